import ArgumentParser
import Foundation
import NeuralNet
import Phantom
import VolumeStore

struct BenchTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Training patches/s of the paper's network (forward, backward, Adam) against PyTorch, interleaved rounds.",
        discussion: """
        Both sides train the same network (valid134 form, batch 32, dropout 0.3, Adam lr 1e-4) from the same initial
        weights on the same phantom patches, on the same number of threads; each round runs brainmap, then PyTorch.
        The peer is tools/bench/train_peer.py run by --torch-python (tools/bench/setup-torch.sh makes .venv-torch
        with a CPU-only PyTorch). Reported: patches/s per round and the median ratio.
        """)

    @Option(parsing: .unconditional, help: "Rounds (median reported).") var rounds = 3
    @Option(parsing: .unconditional, help: "Minibatches per measurement (after one warm-up batch).") var batches = 8
    @Option(parsing: .unconditional, help: "Minibatch size.") var batch = 32
    @Option(parsing: .unconditional, help: "Threads for both sides.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Python with torch installed (default: .venv-torch/bin/python).") var torchPython: String?
    @Flag(help: "Instead: time, FLOPs and GFLOP/s per stage of a training step, forward and backward, next to sgemm (no peer; plain and profiled rounds alternate).")
    var profile = false
    @OptionGroup var blas: BLASFlags

    func validate() throws {
        try FlagCheck.atLeast("--rounds", rounds, 1)
        try FlagCheck.atLeast("--batches", batches, 1)
        try FlagCheck.threads(threads)
        guard (1...1024).contains(batch) else { throw ValidationError("--batch \(batch): give 1 to 1024 patches per minibatch") }
    }

    func run() async throws {
        let shape = NetworkShape.paper(.valid134)
        let n = batch * (batches + 1), side = shape.input
        // Real phantom texture: n windows from a strip of a full-size slice.
        let strip = PhantomVolume(shape: [1, 1420, 5805], seed: 1).render(Box([0..<1, 300..<(300 + side), 0..<5805])).raw
        var images = [Float](repeating: 0, count: n * side * side)
        for i in 0..<n {
            let x0 = (i * 37) % (5805 - side)
            for y in 0..<side { for x in 0..<side { images[(i * side + y) * side + x] = Float(strip[y * 5805 + x0 + x]) / 255 } }
        }
        let labels = (0..<n).map { $0 % shape.classes }
        let initial = shape.initialParameters(seed: 1)
        /// Patches/s of `batches` minibatches (after one warm-up) from the initial weights, Adam included.
        func measure(profile: EngineProfile?) -> Double {
            let bp = Backprop(shape: shape, threads: threads)
            var params = initial
            var adam = Adam(sizes: params.map(\.count))
            var t0 = Date()
            for b in 0...batches {
                if b == 1 { t0 = Date() }   // batch 0 warms up buffers
                let lo = b * batch
                let masks = Backprop.dropoutMasks(shape: shape, seed: 1, stream: 0, first: lo, count: batch)
                let result = images.withUnsafeBufferPointer {
                    bp.run(parameters: params, images: UnsafeBufferPointer(rebasing: $0[(lo * side * side)..<((lo + batch) * side * side)]),
                           labels: Array(labels[lo..<(lo + batch)]), dropout: masks, gradients: true, profile: b > 0 ? profile : nil)
                }
                adam.update(&params, gradients: result.gradients, threads: threads)
            }
            return Double(batches * batch) / Date().timeIntervalSince(t0)
        }
        if profile {
            let sgemm1 = measureSgemm(m: 1024, n: 2048, k: 4608, threads: 1, seconds: 2)
            print(String(format: "OpenBLAS core %@; sgemm 1024×4608 · 4608×2048: %.1f GFLOP/s on 1 thread", BLASCore.record, sgemm1))
            let p = EngineProfile()
            var rates: ([Double], [Double]) = ([], [])
            for _ in 0..<rounds {
                rates.0.append(measure(profile: nil))
                rates.1.append(measure(profile: p))
            }
            EngineProfileBench.table("training step (valid134, batch \(batch), dropout, Adam not profiled), \(threads) threads",
                                     p, units: rounds * batches * batch, unit: "patch", rates: rates, sgemm1: sgemm1)
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-train-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var named: [String: Tensor] = [:]
        for ((name, _), t) in zip(shape.parameterShapes, initial) { named[name] = t }
        named["images"] = Tensor(shape: [n, side, side], data: images)
        named["labels"] = Tensor(shape: [n], data: labels.map(Float.init))
        try Safetensors.save(named, path: dir + "/batch.safetensors")
        let python = torchPython ?? repositoryRoot() + "/.venv-torch/bin/python"
        say("\(batches) minibatches of \(batch) (134² windows, valid134 net) per measurement, \(threads) threads, \(rounds) rounds interleaved")

        var ours: [Double] = [], peer: [Double] = []
        for r in 0..<rounds {
            ours.append(measure(profile: nil))
            var line = String(format: "round %d: brainmap %.1f patches/s", r + 1, ours.last!)
            if FileManager.default.isExecutableFile(atPath: python),
               let out = runPeer("train_peer.py", [dir + "/batch.safetensors", "\(batch)", "\(batches)", "\(threads)"], python: python),
               let rate = Double(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last ?? "") {
                peer.append(rate)
                line += String(format: ", PyTorch %.1f patches/s", rate)
            } else if r == 0 {
                line += " (PyTorch peer skipped: no \(python); run tools/bench/setup-torch.sh)"
            }
            say(line)
        }
        let o = median(ours)
        if peer.isEmpty { say(String(format: "median: brainmap %.1f patches/s", o)); return }
        let p = median(peer)
        say(String(format: "median: brainmap %.1f patches/s, PyTorch %.1f patches/s: ratio %.2f", o, p, o / p))
    }
}
