import ArgumentParser
import Dispatch
import Foundation
import NeuralNet
import Pipeline
import VolumeStore

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the network over whole slices, streaming: labels, probabilities, latent features and entropy per pixel.",
        discussion: """
        Writes RUN.zarr (a Zarr v2 group) with `labels` (u1: 0 not predicted, 1..6 CTX HYP STR VP WM ZI), `probabilities`
        (6,z,y,x), `features` (64,z,y,x), `entropy` (z,y,x), and with --outputs …,anomaly `anomaly` (z,y,x), each spanning the
        source's full extent at the output stride, each an OME-Zarr image group RUN/NAME/0…n with a pyramid (napari and
        Neuroglancer open them), plus run.json (the run's manifest) and done markers under .brainmap/. Re-running the same command resumes; SIGINT/SIGTERM
        finish the blocks in flight and exit resumable. N processes with --shard 0/N … N-1/N fill one run together.
        """)

    @Option(help: "The volume: vol.zarr/raw, https://host/vol.zarr/raw, img.ome.zarr?level=N, bossdb://coll/exp/chan.") var volume: String
    @Option(help: "Weights: safetensors with PyTorch state_dict names (tools/export_weights.py converts a checkpoint).") var model: String
    @Option(help: "Output run directory, e.g. run.zarr.") var out: String
    @Option(parsing: .unconditional, help: "Slices to predict: 'all', '3', '0:8' or '1,5,9' (default all).") var slices = "all"
    @Option(help: "dense (134-window valid net, fast) or exact (the paper's padded-128 patch per pixel, slow).") var mode = "dense"
    @Option(parsing: .unconditional, help: "Output stride S (1, 2, 4, 8, 16): predict every S-th pixel; outputs are ceil(y/S)×ceil(x/S).") var stride = 1
    @Option(help: "Tissue mask: any source, nonzero = tissue (default: automatic, see README).") var mask: String?
    @Flag(help: "Predict every pixel (no tissue mask).") var noMask = false
    @Option(help: "Outputs to write (comma-separated): labels,probabilities,features,entropy, and anomaly (Mahalanobis distance of the latents to the predicted class's training distribution; needs the model's sidecar MODEL.json from brainmap train).") var outputs = "labels,probabilities,features,entropy"
    @Option(help: "Float outputs as f32 or f16.") var dtype = "f32"
    @Option(parsing: .unconditional, help: "Peak memory to stay under, e.g. 2GiB, 800MiB.") var memoryBudget = "2GiB"
    @OptionGroup var sharding: ShardOption
    @Option(parsing: .unconditional, help: "Compute threads (≥ 1).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(parsing: .unconditional, help: "Output pixels per block side (= the output chunk side; ≥ \(Self.minimumBlock)). Default: two engine tiles.") var block: Int?
    @Option(parsing: .unconditional, help: "Engine tile side in output pixels, ≥ 1 (default 176 dense/FFT, 128 dense/sgemm, 16 exact).") var tile: Int?
    @Option(help: "fc1 algorithm for dense mode: fft or gemm.") var fc1 = "fft"
    @Flag(help: "Delete the run's previous outputs and every result computed from them (cleanup, factorize, cluster …), and start over.") var restart = false
    @Flag(help: "No progress bar or progress lines (the closing summary is still printed).") var quiet = false
    @OptionGroup var sourceFlags: SourceFlags
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        var o = PredictOptions(source: volume, model: model, out: out)
        guard let m = EvaluationMode(rawValue: mode) else { throw ValidationError("--mode must be dense or exact") }
        o.mode = m
        o.stride = stride
        if noMask && mask != nil { throw ValidationError("--mask and --no-mask exclude each other") }
        o.mask = noMask ? .none : mask.map { .source($0) } ?? .automatic
        o.outputs = try OutputKind.parse(outputs)
        guard let p = OutputPrecision(rawValue: dtype) else { throw ValidationError("--dtype must be f32 or f16") }
        o.precision = p
        o.memoryBudget = try parseBytes(memoryBudget, name: "--memory-budget")
        o.shard = try sharding.resolve()
        try FlagCheck.atLeast("--threads", threads, 1)
        o.threads = threads
        if let tile { try FlagCheck.atLeast("--tile", tile, 1, "output pixels per engine tile side") }
        if let block {
            try FlagCheck.atLeast("--block", block, Self.minimumBlock, "every block computes the network on its window of (S·(B−1)+134)² "
                + "source pixels: block 7 at stride 1 computes ~400 pixels per output pixel, block 64 ~9, the default 352 ~1.8")
        }
        o.block = block; o.tile = tile
        guard let f = DenseEvaluator.FC1Algorithm(rawValue: fc1) else { throw ValidationError("--fc1 must be fft or gemm") }
        o.fc1 = f
        o.restart = restart
        if slices != "all" { o.slices = try parseSlices(slices) }

        // Engine buffers are large and short-lived: with a fixed mmap threshold glibc hands them back to the system
        // when freed (its default threshold adapts upwards, after which freed blocks stay in per-thread arenas and
        // the resident set sits ~30 MB higher). This process is the command's own; set once here.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 256 << 10)
        let job = PredictJob(options: o, context: sourceFlags.context())
        let signals = StopSignals(finishing: "the blocks in flight") { job.requestStop() }
        defer { signals.cancel() }
        let reporter = quiet ? nil : RunProgress(label: "predict")
        do {
            let s = try await job.run { p in reporter?.update(p) }
            reporter?.finish()
            printSummary(s)
        } catch let e as PredictInterrupted {
            reporter?.finish()
            printSummary(e.summary)
            FileHandle.standardError.write(Data("brainmap predict: \(e)\n".utf8))
            throw ExitCode(130)
        }
    }

    /// Smaller blocks spend most of their time on the 134-pixel halo of their window (block 7 ran 30× slower than 64).
    static let minimumBlock = 16

    func printSummary(_ s: PredictSummary) {
        for n in s.notes { print("note: \(n)") }
        if let plan = s.plan { print("memory plan: \(plan)") }
        print("blocks: \(s.blocksDone) done now, \(s.blocksAlreadyDone) already done (resumed), \(s.blocksWithoutTissue) without tissue, \(s.blocksOtherShards) for other shards")
        print(String(format: "pixels: %d predicted (tissue), %d evaluated in %.1f s: %.0f px/s", s.pixelsPredicted, s.pixelsComputed, s.wall, s.pixelsPerSecond))
        print(String(format: "read %.1f MB of windows, wrote %.1f MB; peak RSS %@", Double(s.windowBytes) / 1e6, Double(s.bytesWritten) / 1e6, formatBytes(s.peakRSS)))
        print(String(format: "time: network busy %.1f s, waiting for input %.1f s (stall %.1f%%); fetch %.1f s, write %.1f s, planner waiting on backpressure %.1f s",
                     s.computeBusy, s.computeIdle, 100 * s.stallFraction, s.fetch, s.write, s.backpressure))
        if !s.remote.isEmpty { print("remote: \(s.remote)") }
        print("outputs: \(out)")
    }
}

@_silgen_name("mallopt") func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32

/// Parses "3", "0:8" or "1,5,9" (callers handle "all"); `flag` names the option in errors.
func parseSlices(_ s: String, flag: String = "--slices") throws -> [Int] {
    var out: [Int] = []
    for part in s.split(separator: ",") {
        let p = part.split(separator: ":", omittingEmptySubsequences: false)
        if p.count == 2, let a = Int(p[0]), let b = Int(p[1]), a < b { out += Array(a..<b) }
        else if p.count == 1, let v = Int(p[0]) { out.append(v) }
        else { throw ValidationError("\(flag): '\(part)' is not N or A:B") }
    }
    guard !out.isEmpty else { throw ValidationError("\(flag) names no slice") }
    if let bad = out.first(where: { $0 < 0 }) { throw ValidationError("\(flag): slice \(bad) is negative; slices count from 0") }
    return Array(Set(out)).sorted()
}

/// Parses "2GiB", "800MiB", "1.5G", "512M" or plain bytes.
func parseBytes(_ s: String, name: String) throws -> Int {
    let units: [(String, Double)] = [("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1024), ("G", 1_073_741_824), ("M", 1_048_576), ("K", 1024), ("B", 1)]
    for (u, f) in units where s.hasSuffix(u) {
        if let v = Double(s.dropLast(u.count)), v > 0, v * f >= 1, v * f < 0x1p62 { return Int(v * f) }
    }
    if let v = Int(s), v > 0 { return v }
    throw ValidationError("\(name) must be a size from 1 byte to 4 EiB like 2GiB or 800MiB, got '\(s)'")
}

/// Progress of a run: a bar with blocks, px/s and ETA on a terminal; a plain line every 5 s otherwise.
final class RunProgress: @unchecked Sendable {
    let label: String
    private let lock = NSLock()
    private var last = Date.distantPast
    private var lastLine = ""
    private let tty = isatty(2) == 1
    init(label: String) { self.label = label }

    func update(_ p: PredictProgress) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) > (tty ? 0.2 : 5) || p.blocksDone == p.blocksTotal else { return }
        last = now
        let f = Double(p.blocksDone) / Double(max(1, p.blocksTotal))
        let eta = p.blocksDone > 0 ? p.elapsed / Double(p.blocksDone) * Double(p.blocksTotal - p.blocksDone) : 0
        let bar = String(repeating: "#", count: Int(f * 30)) + String(repeating: ".", count: 30 - Int(f * 30))
        lastLine = "\(label) [\(bar)] \(p.blocksDone)/\(p.blocksTotal) blocks "
            + String(format: "%3.0f%%  %.0f px/s  %@ elapsed, ETA %@", 100 * f, Double(p.pixels) / max(p.elapsed, 1e-9), formatClock(p.elapsed), formatClock(eta))
        FileHandle.standardError.write(Data(((tty ? "\r" : "") + lastLine + (tty ? "" : "\n")).utf8))
    }

    func finish() { lock.withLock { if tty && !lastLine.isEmpty { FileHandle.standardError.write(Data("\n".utf8)) } } }

}
