import ArgumentParser
import Foundation
import NeuralNet
import Phantom
import VolumeStore

/// Multiply-accumulates per output pixel of each evaluation mode (conv1 folded to one input channel).
enum CNNCost {
    /// Padded-128 net on one patch.
    static let exactMACs = 124 * 124 * 16 * 49 + 60 * 60 * 32 * 400 + 28 * 28 * 64 * 288 + 12 * 12 * 128 * 576 + 4608 * 1024 + 1024 * 64 + 64 * 6
    /// Dense net per output pixel at stride 1 (every layer evaluated once per pixel).
    static let denseMACs = 16 * 49 + 32 * 400 + 64 * 288 + 128 * 576 + 4608 * 1024 + 1024 * 64 + 64 * 6
    /// Dense net per output pixel at stride S: layers before the k-th strided pool run on a grid S/2^j finer.
    static func denseMACs(stride S: Int) -> Int {
        let per = [16 * 49, 32 * 400, 64 * 288, 128 * 576]
        var total = 4608 * 1024 + 1024 * 64 + 64 * 6
        var scale = S
        for (i, m) in per.enumerated() {
            total += m * scale * scale
            if i < S.trailingZeroBitCount { scale /= 2 }
        }
        return total
    }
}

struct BenchGEMM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm",
        abstract: "sgemm GFLOP/s (OpenBLAS) at the shapes the dense net uses, next to numpy's matmul in the same run.")
    @Option(parsing: .unconditional, help: "Seconds per measurement.") var seconds = 2.0
    @Option(help: "One shape M,N,K instead of the dense net's shapes.") var shape: String?
    @Flag(help: "Skip the numpy peer.") var noPeer = false
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        try FlagCheck.seconds(seconds)
        var shapes = [(1024, 2048, 4608), (2048, 2048, 2048), (128, 4096, 576)]
        if let shape {
            let d = shape.split(separator: ",").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }) else { throw ValidationError("--shape must be M,N,K (positive sizes); got '\(shape)'") }
            // A, B and C in float32 (and numpy's copies beside them): refuse what cannot be held rather than abort.
            let bytes = d.allSatisfy({ $0 <= 1 << 20 }) ? 4 * (d[0] * d[2] + d[2] * d[1] + d[0] * d[1]) : Int.max
            guard bytes <= 8 << 30 else {
                throw ValidationError("--shape \(shape): A, B and C would take " + (bytes == Int.max ? "more than 8 GiB" : formatBytes(bytes))
                                      + "; give at most 8 GiB of float32 matrices")
            }
            shapes = [(d[0], d[1], d[2])]
        }
        print("OpenBLAS core: \(BLASCore.record); CPU: \(CPUFeatures.detect().summary)")
        print("sgemm, GFLOP/s (brainmap = OpenBLAS via cblas; peer = numpy float32 matmul):")
        print("  shape (M×K · K×N)          threads   brainmap      numpy   ratio")
        for (m, n, k) in shapes {
            for t in [1, 2] {
                let g = measureSgemm(m: m, n: n, k: k, threads: t, seconds: seconds)
                let peer = noPeer ? nil : runPeer("cnn_peer.py", ["gemm", "\(m)", "\(n)", "\(k)", "\(seconds)", "\(t)"])
                    .flatMap { Double($0.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)) }
                print("  " + "\(m)×\(k) · \(k)×\(n)".padding(toLength: 27, withPad: " ", startingAt: 0)
                      + pad("\(t)", 7) + pad(String(format: "%.1f", g), 11) + pad(peer.map { String(format: "%.1f", $0) } ?? "–", 11)
                      + pad(peer.map { String(format: "%.2f", g / $0) } ?? "–", 8))
            }
        }
    }
}

/// Times C = A·B with OpenBLAS on `threads` threads; GFLOP/s.
func measureSgemm(m: Int, n: Int, k: Int, threads: Int, seconds: Double) -> Double {
    let a = (0..<(m * k)).map { Float($0 % 17) / 17 }, b = (0..<(k * n)).map { Float($0 % 13) / 13 }
    var c = [Float](repeating: 0, count: m * n)
    NeuralNet.BLAS.setThreads(threads)
    defer { NeuralNet.BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
    let flops = 2.0 * Double(m * n * k)
    let rate = throughput(seconds: seconds) {
        Sgemm.run(m: m, n: n, k: k, a: a, b: b, c: &c)
        return 1
    }
    return rate * flops / 1e9
}

struct BenchCNN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cnn",
        abstract: "Dense and exact px/s on a phantom slice against PyTorch and onnxruntime, interleaved rounds.",
        discussion: """
        Each round runs, in turn: brainmap dense stride 1 (FFT fc1, 176² tiles, one tile per thread with 1-thread \
        BLAS: the default), brainmap exact (padded 128, batch 64), the PyTorch peer (tools/bench/cnn_torch_peer.py \
        run by --torch-python: exact batch 64, and the dense net at its best of 128/256/384-px tiles) and the \
        onnxruntime peer (tools/bench/cnn_peer.py). Reported: every round, the medians, and the per-round ratios \
        (median, min–max). --variants adds brainmap's other dense configurations, measured once.
        """)
    @Option(parsing: .unconditional, help: "Seconds per measurement.") var seconds = 3.0
    @Option(parsing: .unconditional, help: "Rounds (medians reported).") var rounds = 3
    @Option(parsing: .unconditional, help: "Threads (cores) to use.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Python with torch installed (default: .venv-torch/bin/python).") var torchPython: String?
    @Option(help: "What to measure: dense, exact, or both (dense,exact); exact alone is the quick loop for exact-path work.")
    var modes = "dense,exact"
    @Flag(help: "Also measure, once, fc1 by sgemm, BLAS-threaded tiles and strides 2/4/16 (informational).")
    var variants = false
    @Flag(help: "Instead: time, FLOPs and GFLOP/s per stage of dense S=1 and exact, next to sgemm (--rounds rounds, profiled and plain alternating).")
    var profile = false
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        try FlagCheck.atLeast("--rounds", rounds, 1)
        try FlagCheck.seconds(seconds)
        try FlagCheck.threads(threads)
        let chosen = Set(modes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard !chosen.isEmpty, chosen.isSubset(of: ["dense", "exact"]) else { throw ValidationError("--modes must be dense, exact or dense,exact; got '\(modes)'") }
        let wantDense = chosen.contains("dense"), wantExact = chosen.contains("exact")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-cnn-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let params = AreaClassifier.randomParameters(seed: 1)
        try Safetensors.save(params, path: dir + "/w.safetensors")
        let model = try AreaClassifier(parameters: params)
        let H = 512, W = 1024
        let plane = PhantomVolume(shape: [1, 1420, 5805], seed: 1).render(Box([0..<1, 400..<(400 + H), 2000..<(2000 + W)])).raw
        if profile {
            return try EngineProfileBench(model: model, plane: plane, height: H, width: W, threads: threads, seconds: seconds, rounds: rounds).run()
        }

        let peak = measureSgemm(m: 1024, n: 2048, k: 4608, threads: threads, seconds: seconds)
        say("OpenBLAS core \(BLASCore.record); \(threads) threads; \(rounds) rounds of \(seconds) s per measurement")
        say(String(format: "sgemm peak (1024×4608 · 4608×2048, %d threads): %.1f GFLOP/s", threads, peak))
        let python = torchPython ?? repositoryRoot() + "/.venv-torch/bin/python"
        let torch = FileManager.default.isExecutableFile(atPath: python)
        if !torch { say("PyTorch peer skipped: no \(python); run tools/bench/setup-torch.sh") }

        let fft = DenseEvaluator(model: model, fc1: .fft)
        let exact = PatchEvaluator(model: model, threads: threads)
        let patches = (0..<64).map { (100 + ($0 / 8) * 37, 200 + ($0 % 8) * 61) }
        let rows = 0..<352, cols = 0..<704   // eight 176² tiles: four per thread at 2 threads
        var results: [String: [Double]] = [:]
        for r in 1...rounds {
            var round: [String: Double] = [:]
            if wantDense {
                round["brainmap dense"] = try throughput(seconds: seconds) {
                    _ = try fft.evaluate(plane: plane, height: H, width: W, rows: rows, cols: cols, stride: 1, tile: 176,
                                         parallelTiles: threads, blasThreads: threads)
                    return rows.count * cols.count
                }
            }
            if wantExact {
                round["brainmap exact"] = throughput(seconds: seconds) {
                    _ = exact.evaluate(plane: plane, height: H, width: W, pixels: patches)
                    return patches.count
                }
            }
            // The peers measure only the chosen modes (PyTorch at its default three dense tiles).
            let peerModes = [wantDense ? "dense" : nil, wantExact ? "exact" : nil].compactMap { $0 }.joined(separator: ",")
            if torch, let out = runPeer("cnn_torch_peer.py", [dir + "/w.safetensors", "\(seconds)", "\(threads)", "128,256,384", peerModes], python: python) {
                for (k, v) in peerRates(out) { round["PyTorch " + k] = v }
            }
            if let out = runPeer("cnn_peer.py", ["cnn", dir + "/w.safetensors", "\(seconds)", "\(threads)", peerModes]) {
                for (k, v) in peerRates(out) { round["onnxruntime " + k] = v }
            }
            for (k, v) in round { results[k, default: []].append(v) }
            say("round \(r): " + round.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f", $0.key, $0.value) }.joined(separator: ", "))
        }

        say("\nmedians of \(rounds) rounds (GFLOP/s counts the direct network's FLOPs: 9.8 MFLOP per dense pixel, 176 per")
        say("exact patch; the FFT path executes fewer, so its % of sgemm peak can pass 100%):")
        say("mode                                              px/s     GFLOP/s   % of sgemm peak")
        let rowsShown: [(String, String, Int)] = [
            ("brainmap dense", "brainmap dense S=1 (FFT fc1, 176² tiles)", CNNCost.denseMACs),
            ("PyTorch dense", "PyTorch dense S=1, best of 128/256/384 tiles", CNNCost.denseMACs),
            ("PyTorch dense@128", "  PyTorch dense S=1, 128² tile", CNNCost.denseMACs),
            ("PyTorch dense@256", "  PyTorch dense S=1, 256² tile", CNNCost.denseMACs),
            ("PyTorch dense@384", "  PyTorch dense S=1, 384² tile", CNNCost.denseMACs),
            ("onnxruntime dense", "onnxruntime dense S=1 (128² tile)", CNNCost.denseMACs),
            ("brainmap exact", "brainmap exact (padded 128, batch 64)", CNNCost.exactMACs),
            ("PyTorch exact", "PyTorch exact (3-ch, batch 64)", CNNCost.exactMACs + 124 * 124 * 16 * 98),
            ("onnxruntime exact", "onnxruntime exact (3-ch, batch 32)", CNNCost.exactMACs + 124 * 124 * 16 * 98)]
        for (key, name, macs) in rowsShown {
            guard let v = results[key] else { continue }
            row(name, median(v), macs, peak: peak)
        }
        for (a, b) in [("brainmap dense", "PyTorch dense"), ("brainmap exact", "PyTorch exact"),
                       ("brainmap dense", "onnxruntime dense"), ("brainmap exact", "onnxruntime exact")] {
            guard let x = results[a], let y = results[b], x.count == y.count else { continue }
            let ratios = zip(x, y).map { $0 / $1 }
            say(String(format: "%@ / %@: median of rounds %.2f× (%.2f–%.2f; rounds %@)", a, b, median(ratios), ratios.min()!, ratios.max()!,
                       ratios.map { String(format: "%.2f", $0) }.joined(separator: " / ")))
        }
        if variants { try measureVariants(model: model, plane: plane, height: H, width: W, peak: peak) }
    }

    /// "name rate" lines of a peer's output.
    private func peerRates(_ out: String) -> [(String, Double)] {
        out.split(separator: "\n").compactMap { l in
            let p = l.split(separator: " ")
            guard p.count == 2, let v = Double(p[1]) else { return nil }
            return (String(p[0]), v)
        }
    }

    private func row(_ name: String, _ pxs: Double, _ macs: Int, peak: Double) {
        let gf = pxs * Double(macs) * 2 / 1e9
        say(name.padding(toLength: 46, withPad: " ", startingAt: 0) + pad(String(format: "%.0f", pxs), 9)
            + pad(String(format: "%.1f", gf), 12) + pad(String(format: "%.0f%%", 100 * gf / peak), 12))
    }

    /// brainmap's other dense configurations, once each (informational: not interleaved with the peers).
    private func measureVariants(model: AreaClassifier, plane: [UInt8], height H: Int, width W: Int, peak: Double) throws {
        say("\nother brainmap configurations (one measurement each):")
        let gemm = DenseEvaluator(model: model, fc1: .gemm), fft = DenseEvaluator(model: model, fc1: .fft)
        for (dense, tile, parallel) in [(gemm, 128, 1), (gemm, 128, threads), (fft, 176, 1)] where parallel <= threads {
            let rows = 0..<352, cols = 0..<704
            let pxs = try throughput(seconds: seconds) {
                _ = try dense.evaluate(plane: plane, height: H, width: W, rows: rows, cols: cols, stride: 1, tile: tile,
                                       parallelTiles: parallel, blasThreads: threads)
                return rows.count * cols.count
            }
            row("dense S=1 fc1 \(dense.fc1Algorithm) tile \(tile), \(parallel == 1 ? "BLAS×\(threads)" : "\(parallel) tiles×BLAS1")", pxs,
                CNNCost.denseMACs, peak: peak)
        }
        for S in [2, 4, 16] {
            for (dense, parallel) in [(gemm, 1), (fft, threads)] {
                let pxs = try throughput(seconds: seconds) {
                    let o = try dense.evaluate(plane: plane, height: H, width: W, rows: 0..<H, cols: 0..<W, stride: S, tile: 176,
                                               parallelTiles: parallel, blasThreads: threads)
                    return o.height * o.width
                }
                row("dense S=\(S) fc1 \(dense.fc1Algorithm) (output px)", pxs, CNNCost.denseMACs(stride: S), peak: peak)
            }
        }
    }
}
