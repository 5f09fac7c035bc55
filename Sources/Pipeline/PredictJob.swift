import Foundation
import NeuralNet
import VolumeStore

/// `dense`: the 134-window valid net, shared compute (fast). `exact`: the paper's zero-padded 128 patch per pixel.
public enum EvaluationMode: String, Sendable, CaseIterable { case dense, exact }

/// Everything `brainmap predict` is asked to do.
public struct PredictOptions: Sendable {
    /// The output strides the dense engine computes (it pools by 2 four times).
    public static let strides = [1, 2, 4, 8, 16]
    public static func checkStride(_ s: Int) throws {
        guard strides.contains(s) else { throw PipelineError.input("--stride \(s): use \(strides.dropLast().map(String.init).joined(separator: ", ")) or \(strides.last!)") }
    }
    public var source: String
    public var model: String
    public var out: String
    /// Slices to predict (nil: all).
    public var slices: [Int]?
    public var mode: EvaluationMode = .dense
    public var stride = 1
    public var mask: MaskRule = .automatic
    public var outputs: [OutputKind] = OutputKind.defaults
    public var precision: OutputPrecision = .f32
    public var memoryBudget = 2 << 30
    public var shard: Shard = .all
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var restart = false
    /// Output pixels per block side (= chunk side of every output); nil: 2 engine tiles (352 dense, 256 exact).
    public var block: Int?
    /// Engine tile side in output pixels; nil: 176 for the FFT path, 128 for sgemm, 16 for exact.
    public var tile: Int?
    public var fc1: DenseEvaluator.FC1Algorithm = .fft
    /// Build the outputs' pyramid levels as blocks finish. false only to measure what they cost (`brainmap bench
    /// predict --pyramids`): the levels are then left unbuilt.
    public var pyramids = true

    public init(source: String, model: String, out: String) { self.source = source; self.model = model; self.out = out }
}

/// Progress of a run, reported after each block.
public struct PredictProgress: Sendable {
    public var blocksDone: Int, blocksTotal: Int, pixels: Int
    public var elapsed: Double
}

/// What a run did and where its time went.
public struct PredictSummary: Sendable {
    public var blocksDone = 0, blocksAlreadyDone = 0, blocksWithoutTissue = 0, blocksOtherShards = 0
    public var pixelsPredicted = 0, pixelsComputed = 0
    public var wall = 0.0
    public var windowBytes = 0, bytesWritten = 0
    public var remote = ""
    public var peakRSS = 0
    public var plan: MemoryPlan?
    /// What beginning the step decided and why (e.g. what --restart discarded).
    public var notes: [String] = []
    /// Thread-seconds: network busy / idle (waiting for input) on the compute threads; seconds spent fetching
    /// windows (summed over blocks in flight), writing, and waiting for a free slot (backpressure).
    public var computeBusy = 0.0, computeIdle = 0.0, fetch = 0.0, write = 0.0, backpressure = 0.0
    public var stallFraction: Double { computeBusy + computeIdle > 0 ? computeIdle / (computeBusy + computeIdle) : 0 }
    public var pixelsPerSecond: Double { wall > 0 ? Double(pixelsComputed) / wall : 0 }
}

/// The streaming prediction job: plan → fetch → assemble windows → evaluate → write, over blocks of output pixels.
///
/// Concurrency: each block is one task that fetches its window (through the context's chunk cache), evaluates
/// its tiles on the compute pool (threads owned by the job, BLAS single-threaded on each), and hands its outputs
/// to the writer thread, which stores the chunks durably and then journals the block. At most
/// `plan.blocksInFlight` blocks exist at once: when the network is the bottleneck, the planner waits for a slot
/// (backpressure), so memory is bounded whatever the volume's size; the blocks ahead of the network have their
/// windows fetched already (read-ahead), so it does not wait for I/O.
public final class PredictJob: @unchecked Sendable {
    public let options: PredictOptions
    private var context: SourceOptions
    private let stopFlag = StopFlag()

    public init(options: PredictOptions, context: SourceOptions) {
        self.options = options; self.context = context
    }

    /// Asks the run to stop: blocks in flight finish and are journaled, no new ones start (SIGINT/SIGTERM).
    public func requestStop() { stopFlag.set() }

    public func run(progress: @escaping @Sendable (PredictProgress) -> Void = { _ in }) async throws -> PredictSummary {
        let o = options
        let start = Date()
        var summary = PredictSummary()

        // Source and parameters.
        try PredictOptions.checkStride(o.stride)
        // The source as messages and run.json show it: never with a `user:password@` part.
        // A local path in its standard absolute form, so that a run resumed from another directory, or named
        // `./vol.zarr/raw/`, is the same source.
        let shown: String
        if o.source.contains("://") { shown = redactingCredentials(o.source) }
        else {
            let parts = o.source.split(separator: "?", maxSplits: 1)
            shown = URL(fileURLWithPath: String(parts.first ?? "")).standardizedFileURL.path + (parts.count > 1 ? "?" + parts[1] : "")
        }
        let probe = try await VolumeSource.open(o.source, options: context)
        guard probe.shape.count == 3 else {
            throw PipelineError.input("\(shown) has shape \(probe.shape); predict needs a (z, y, x) volume")
        }
        guard probe.dtype.kind == .uint && probe.dtype.size == 1 else {
            throw PipelineError.input("\(shown) has dtype \(probe.dtype); the network takes uint8 gray values (convert or rescale the volume to u1)")
        }
        let shape = probe.shape
        let slices = o.slices ?? Array(0..<shape[0])
        if let bad = slices.first(where: { $0 < 0 || $0 >= shape[0] }) {
            throw PipelineError.input("slice \(bad) is outside the volume's 0…\(shape[0] - 1)")
        }

        // Model and engine.
        let model: AreaClassifier
        do { model = try AreaClassifier(contentsOf: o.model) }
        catch {
            throw PipelineError.input("\(error)\n--model takes the paper's network as safetensors with PyTorch state_dict names; "
                + "convert a PyTorch checkpoint with: tools/export_weights.py CHECKPOINT.pt MODEL.safetensors")
        }
        let digest = try SHA256.file(o.model)
        // The anomaly map's class statistics come from the model's sidecar; their digest joins the run's identity.
        let latentStatistics: LatentStatistics?
        var statisticsDigest: [(String, String)] = []
        if o.outputs.contains(.anomaly) {
            do { latentStatistics = try LatentStatistics.load(sidecarOf: o.model, weightsSHA256: digest) }
            catch { throw PipelineError.input("--outputs anomaly: \(error)") }
            statisticsDigest = [("latent_statistics_sha256", try SHA256.file(LatentStatistics.sidecarPath(of: o.model)))]
        } else { latentStatistics = nil }
        let engine: TileEngine
        let weightBytes = 2 * 4 * AreaClassifier.parameterShapes.reduce(0) { $0 + $1.1.reduce(1, *) }
        let perWorker: Int, extraWeights: Int
        switch o.mode {
        case .dense:
            let dense = DenseEvaluator(model: model, fc1: o.fc1)
            let t = o.tile ?? (o.fc1 == .fft ? 176 : 128)
            engine = .dense(dense, tile: t)
            perWorker = dense.workspaceBytes(outputs: t, stride: o.stride) + 4 * 70 * t * t
            extraWeights = o.fc1 == .fft ? PolyphaseFFTConv.weightBytes : 0
        case .exact:
            let t = o.tile ?? 16
            engine = .exact(PatchEvaluator(model: model, threads: 1), tile: t)
            // Per patch of the tile: the 4608 features, fc1's and the outputs; the conv stages' chunk workspace.
            perWorker = 4 * t * t * (4608 + 1024 + 70) + PatchEvaluator.workspaceBytes
            extraWeights = 0
        }
        let block = o.block ?? 2 * engine.tile
        guard block >= 1 else { throw PipelineError.input("--block must be positive") }
        let plan = try MemoryPlan(budget: o.memoryBudget, threads: o.threads, weights: weightBytes + extraWeights,
                                  perWorker: perWorker, block: block, stride: o.stride,
                                  bytesPerOutputPixel: BlockResult.bytesPerPixel,
                                  mask: MaskMemory.plannedBytes(rule: o.mask, sourceShape: shape, sourceChunkRows: probe.metadata.chunks[1], elementSize: 1))
        summary.plan = plan
        context.cache = ChunkCache(capacity: plan.cacheBytes)
        let source = try await VolumeSource.open(o.source, options: context)

        // The run directory.
        let grid = BlockGrid(sourceShape: shape, stride: o.stride, block: block)
        let parameters = Parameters([
            ("source", shown), ("source_shape", "\(shape)"), ("model_sha256", digest), ("mode", o.mode.rawValue),
            ("stride", "\(o.stride)"), ("mask", o.mask.description), ("outputs", o.outputs.map(\.rawValue).joined(separator: ",")),
            ("dtype", o.precision.rawValue), ("block", "\(block)"), ("tile", "\(engine.tile)"),
            ("engine", o.mode == .dense ? "dense fc1=\(o.fc1.rawValue)" : "exact padded128"),
        ] + statisticsDigest)
        let info: [String: String] = [
            "model": o.model, "brainmap": brainmapVersion, "openblas": BLAS.config, "openblas_core": BLASCore.record,
            "shard_layout": "block k (row-major over z, block row, block column) belongs to shard k mod N",
            "block_grid": "\([grid.depth, grid.rows, grid.cols])", "block_pixels": "\(block)", "blocks_per_slice": "\(grid.blocksPerSlice)",
        ]
        let io = ThreadPool(name: "run-io", threads: 2)
        let runDir = try Run.openForPredict(o.out)
        let session = try runDir.begin(step: "predict", command: "predict", parameters: parameters, inputs: [:],
                                       outputs: o.outputs.map(\.rawValue), shard: o.shard, restart: o.restart, policy: .refuse(hint:
            "Re-run with the same parameters to resume it (other slices can be added), add --restart to start it over, or choose another --out."),
                                       info: info)
        summary.notes = session.notes
        let run = try await RunStore.open(session: session, outputs: o.outputs, precision: o.precision, grid: grid, io: io)
        let masks = try await MaskProvider(rule: o.mask, source: source, context: context)

        // The work: this shard's blocks of the asked slices without a done marker (the block executor's plan).
        let work = session.plan(slices.sorted().flatMap { grid.blocks(slice: $0) }, id: \.id)
        summary.blocksOtherShards = work.otherShards; summary.blocksAlreadyDone = work.alreadyDone
        let todo = work.todo

        let compute = ThreadPool(name: "compute", threads: plan.workers)
        let writerPool = ThreadPool(name: "writer", threads: 1)
        let writer = BlockWriter(run: run, precision: o.precision)
        let pyramids = BlockPyramids(session: session, grid: grid, outputs: o.pyramids ? o.outputs : [])
        let stats = RunCounters()
        let previousBLAS = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(previousBLAS) }
        compute.resetMeasurement()

        let S = o.stride, H = shape[1], W = shape[2]
        let halo = DenseEvaluator.halo
        @Sendable func process(_ b: OutputBlock) async throws {
            let mask = try await masks.mask(b.z)
            let rows = (S * b.y0)..<(S * (b.y0 + b.height - 1) + 1), cols = (S * b.x0)..<(S * (b.x0 + b.width - 1) + 1)
            if let mask, !mask.any(rows: rows, cols: cols) {
                try await writerPool.run { try session.markDone("\(b.id)"); try pyramids.completed(b, grid: grid) }
                stats.add(empty: 1)
                return
            }
            // Fetch the window: the block's source pixels with the halo, clipped to the volume.
            let t0 = Date()
            let wy = max(0, rows.lowerBound - halo)..<min(H, rows.upperBound - 1 + halo)
            let wx = max(0, cols.lowerBound - halo)..<min(W, cols.upperBound - 1 + halo)
            let data = try await source.read(Box([b.z..<(b.z + 1), wy, wx]))
            let window = InputWindow(y0: wy.lowerBound, x0: wx.lowerBound, height: wy.count, width: wx.count, data: data)
            stats.add(fetch: Date().timeIntervalSince(t0), bytes: data.count)
            // Evaluate its tiles on the compute threads.
            let result = BlockResult(b)
            try await withThrowingTaskGroup(of: Void.self) { g in
                for tile in engine.tiles(of: b) {
                    g.addTask {
                        try Task.checkCancellation()
                        try await compute.run { try engine.run(tile: tile, window: window, stride: S, mask: mask, into: result) }
                    }
                }
                try await g.waitForAll()
            }
            if let latentStatistics {
                try await compute.run {
                    latentStatistics.distances(latents: result.features.baseAddress!, labels: result.labels.baseAddress!,
                                               count: b.pixels, into: result.anomaly.baseAddress!)
                }
            }
            // Store durably, then journal.
            let bytes = try await writerPool.run { () -> (Int, Double) in
                let t1 = Date()
                let n = try writer.write(result)
                try session.markDone("\(b.id)")
                try pyramids.completed(b, grid: grid)
                return (n, Date().timeIntervalSince(t1))
            }
            stats.add(written: bytes.0, write: bytes.1, predicted: result.predicted, computed: result.computed)
        }

        var done = 0
        var stopped = false
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            func finishOne() async throws {
                try await group.next()
                inFlight -= 1; done += 1
                progress(PredictProgress(blocksDone: done, blocksTotal: todo.count, pixels: stats.computed,
                                         elapsed: Date().timeIntervalSince(start)))
            }
            for b in todo {
                if stopFlag.isSet { stopped = true; break }
                if inFlight >= plan.blocksInFlight {
                    let t = Date()
                    try await finishOne()
                    stats.add(backpressure: Date().timeIntervalSince(t))
                }
                group.addTask { try await process(b) }
                inFlight += 1
            }
            while inFlight > 0 { try await finishOne() }
        }

        if !stopped { try await writerPool.run { try pyramids.finish(slices: slices, final: Set(session.done().keys.compactMap(Int.init))) } }
        let use = compute.utilisation()
        summary.computeBusy = use.busy; summary.computeIdle = use.idle
        summary.blocksDone = done
        summary.wall = Date().timeIntervalSince(start)
        stats.fill(&summary)
        summary.remote = context.stats.requests > 0 ? context.stats.summary : ""
        summary.peakRSS = peakRSS()
        if stopped { throw PredictInterrupted(summary: summary, remaining: todo.count - done) }
        return summary
    }
}

/// Thrown when a stop was requested: the blocks in flight finished and are journaled.
public struct PredictInterrupted: Error, CustomStringConvertible {
    public let summary: PredictSummary
    public let remaining: Int
    public var description: String { PipelineError.interrupted(remaining: remaining).description }
}

/// The version recorded in run.json.
public let brainmapVersion = "0.2.0"

/// Peak resident set size of this process (VmHWM), in bytes.
public func peakRSS() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb * 1024
}

/// Counters the block tasks add to from many threads.
final class RunCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var s = PredictSummary()
    func add(empty: Int) { lock.withLock { s.blocksWithoutTissue += empty } }
    func add(fetch: Double, bytes: Int) { lock.withLock { s.fetch += fetch; s.windowBytes += bytes } }
    func add(written: Int, write: Double, predicted: Int, computed: Int) {
        lock.withLock { s.bytesWritten += written; s.write += write; s.pixelsPredicted += predicted; s.pixelsComputed += computed }
    }
    func add(backpressure: Double) { lock.withLock { s.backpressure += backpressure } }
    var computed: Int { lock.withLock { s.pixelsComputed } }
    func fill(_ out: inout PredictSummary) {
        lock.withLock {
            out.blocksWithoutTissue = s.blocksWithoutTissue; out.fetch = s.fetch; out.windowBytes = s.windowBytes
            out.bytesWritten = s.bytesWritten; out.write = s.write; out.pixelsPredicted = s.pixelsPredicted
            out.pixelsComputed = s.pixelsComputed; out.backpressure = s.backpressure
        }
    }
}
