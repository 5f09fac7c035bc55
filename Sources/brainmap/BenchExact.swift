import ArgumentParser
import Foundation
import NeuralNet
import Phantom
import VolumeStore

/// Exact mode alone, against its peers in interleaved rounds: each round times brainmap's PatchEvaluator, then
/// PyTorch (tools/bench/cnn_torch_peer.py) and onnxruntime (cnn_peer.py) on the same weights; medians and the
/// spread of the per-round ratios. `bench cnn` measures exact once among all the dense modes; this is the quick
/// repeated measurement exact-path work needs.
struct BenchExact: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exact",
        abstract: "Exact-mode patches/s (padded 128, batch 64) against PyTorch and onnxruntime, interleaved rounds.")
    @Option(help: "Rounds (medians reported).") var rounds = 3
    @Option(help: "Seconds per measurement.") var seconds = 3.0
    @Option(help: "Threads for every side.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Python with torch installed (default: .venv-torch/bin/python).") var torchPython: String?
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-exact-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let params = AreaClassifier.randomParameters(seed: 1)
        try Safetensors.save(params, path: dir + "/w.safetensors")
        let exact = PatchEvaluator(model: try AreaClassifier(parameters: params), threads: threads)
        // bench cnn's slice and patches: 64 pixels 37 rows and 61 columns apart (overlapping patches, none shared).
        let H = 512, W = 1024
        let plane = PhantomVolume(shape: [1, 1420, 5805], seed: 1).render(Box([0..<1, 400..<(400 + H), 2000..<(2000 + W)])).raw
        let pixels = (0..<64).map { (100 + ($0 / 8) * 37, 200 + ($0 % 8) * 61) }
        let python = torchPython ?? repositoryRoot() + "/.venv-torch/bin/python"
        func peerRate(_ out: String?) -> Double? {
            for line in (out ?? "").split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 2 && f[0] == "exact" { return Double(f[1]) }
            }
            return nil
        }
        var ours: [Double] = [], torch: [Double] = [], onnx: [Double] = []
        for r in 0..<rounds {
            ours.append(throughput(seconds: seconds) {
                _ = exact.evaluate(plane: plane, height: H, width: W, pixels: pixels)
                return pixels.count
            })
            var line = String(format: "round %d: brainmap %.0f patches/s", r + 1, ours.last!)
            if FileManager.default.isExecutableFile(atPath: python),
               let t = peerRate(runPeer("cnn_torch_peer.py", [dir + "/w.safetensors", "\(seconds)", "\(threads)", "128"], python: python)) {
                torch.append(t); line += String(format: ", PyTorch %.0f", t)
            }
            if let o = peerRate(runPeer("cnn_peer.py", ["cnn", dir + "/w.safetensors", "\(seconds)", "\(threads)"])) {
                onnx.append(o); line += String(format: ", onnxruntime %.0f", o)
            }
            say(line)
        }
        func ratios(_ name: String, _ peer: [Double]) {
            guard peer.count == ours.count else { return }
            let q = zip(ours, peer).map { $0 / $1 }
            say(String(format: "  vs %@ %.0f patches/s: %.2f× (rounds %.2f–%.2f)", name, median(peer), median(q), q.min()!, q.max()!))
        }
        say(String(format: "median: brainmap %.0f patches/s (%d threads)", median(ours), threads))
        ratios("PyTorch", torch)
        ratios("onnxruntime", onnx)
    }
}
