import Foundation
import NeuralNet
import Pipeline
import VolumeStore

/// How NMF's non-negative input is made from the latents (which fc2 leaves signed).
public enum NonNegative: String, Sendable, CaseIterable {
    /// x − (global per-dimension minimum): keeps every dimension's geometry; the default.
    case shift
    /// max(x, 0): drops the negative half.
    case relu
    /// [max(x, 0), max(−x, 0)]: 128 dimensions, nothing lost.
    case split

    func dims(_ d: Int) -> Int { self == .split ? 2 * d : d }

    func apply(_ x: [Double], d: Int, minimum: [Double]) -> [Double] {
        switch self {
        case .shift: return x.enumerated().map { max(0, $0.element - minimum[$0.offset % d]) }
        case .relu: return x.map { max(0, $0) }
        case .split:
            var out = [Double](); out.reserveCapacity(2 * x.count)
            for r in 0..<(x.count / d) {
                for j in 0..<d { out.append(max(0, x[r * d + j])) }
                for j in 0..<d { out.append(max(0, -x[r * d + j])) }
            }
            return out
        }
    }
}

public struct FactorizeOptions: Sendable {
    public enum Method: String, Sendable { case pca, nmf }
    public var run: String
    public var method: Method = .pca
    public var k = 15
    public var slices: [Int]?
    public var mask: PixelMask = .predicted
    public var nonneg: NonNegative = .shift
    /// NMF: rows fitted in memory before the full passes.
    public var sample = 100_000
    /// NMF: full passes after the sample fit (the last one writes the coefficients).
    public var passes = 2
    public var seed: UInt64 = 1
    /// This process's share of the blocks (block i belongs to shard i mod N); the shards exchange each pass's
    /// statistics through files (ShardExchange) and all take the same steps.
    public var shard: Shard = .all
    public var cacheBytes = 64 << 20
    /// Start a new generation (every shard given --restart joins the same one).
    public var restart = false
    /// Shards: how long to wait for the others' statistics before giving up (seconds).
    public var waitTimeout = 3600.0
    /// Map tasks and reduces instead of shards that run at once (StepPasses).
    public var pass: PassMode?
    public init(run: String) { self.run = run }

    /// The most passes over the blocks a run takes (map/reduce pairs, StepPasses): PCA the moments and the
    /// projections; NMF the moments and sample, then --passes.
    public var mostPasses: Int { method == .pca ? 2 : 1 + max(1, passes) }

    var parameters: Parameters {
        Parameters([("method", method.rawValue), ("k", "\(k)"), ("slices", slices.map { $0.map(String.init).joined(separator: ",") } ?? "all"),
                    ("mask", mask.description), ("nonneg", method == .nmf ? nonneg.rawValue : "-"), ("sample", method == .nmf ? "\(sample)" : "-"),
                    ("passes", method == .nmf ? "\(passes)" : "-"), ("seed", "\(seed)")]
                   // The coefficients' solver: NNLS on unit-norm rows of H since 2026-11-30 (before, absolute
                   // tolerances zeroed a large factor's coefficients), so NMF results of the older solver are redone.
                   + (method == .nmf ? [("nnls", "unit-norm")] : []))
    }
}

public typealias FactorizeProgress = StepProgress

public struct FactorizeSummary: Sendable {
    public var rows = 0
    public var explainedVarianceRatio: [Double] = []
    public var objectives: [Double] = []
    public var sampleObjective = 0.0
    /// Rows the NMF fit ran on (≤ --sample).
    public var sampleRows = 0
    public var resultPath = "", array = ""
    public var wall = 0.0, peakRSS = 0
    /// Why the result is recomputed from scratch (other parameters, changed inputs, --restart), if it is.
    public var notes: [String] = []
    /// The saved result was made from the same parameters and inputs: nothing recomputed.
    public var upToDate = false
}

/// `brainmap factorize`: PCA (exact, from streamed moments) or NMF (sample fit, then full streamed passes) of a
/// run's 64-d features. Memory: one block of rows, the statistics, and (NMF) the sample.
public final class FactorizeJob: @unchecked Sendable {
    public let options: FactorizeOptions
    public init(options: FactorizeOptions) {
        var o = options
        o.mask = o.mask.canonical   // recorded in one spelling, however a caller typed it
        self.options = o
    }

    public func run(progress: @escaping (FactorizeProgress) -> Void = { _ in }) async throws -> FactorizeSummary {
        let o = options, start = Date()
        guard o.k >= 1 else { throw AnalysisError.input("--k must be at least 1") }
        var ctx = SourceOptions(cacheBytes: o.cacheBytes)
        ctx.cache = ChunkCache(capacity: o.cacheBytes)
        let run = try await RunArrays(root: o.run, context: ctx)
        let features = try await run.channels("features")
        let d = features.shape[0]
        guard o.k <= o.nonneg.dims(d) else { throw AnalysisError.input("--k \(o.k) exceeds the \(d) feature dimensions") }
        let zs = o.slices ?? Array(0..<run.depth)
        if let bad = zs.first(where: { $0 < 0 || $0 >= run.depth }) { throw AnalysisError.input("--slices: slice \(bad) is outside the run (z = 0..<\(run.depth))") }
        let maskSource: ZarrArray? = if case let .source(s) = o.mask { try await run.regions(s) } else { nil }
        let blocks = run.blocks(zs)
        var summary = FactorizeSummary()
        let step = o.method.rawValue, dir = run.analysisDirectory
        summary.array = step; summary.resultPath = dir + "/\(step).json"
        var maskPath: String? = nil
        if case let .source(s) = o.mask { maskPath = s }
        let inputs = try run.inputs(slices: o.slices, sources: [maskPath])
        if run.run.wouldStartGeneration(step, parameters: o.parameters, inputs: inputs, restart: o.restart, pass: o.pass),
           try await !o.mask.hasPixels(2, run, blocks, source: maskSource) {
            throw AnalysisError.input("fewer than 2 predicted pixels under the mask (\(o.mask.description)) in slices \(zs); nothing was changed "
                                      + "(brainmap status \(o.run) lists the predicted slices)")
        }
        let session = try run.run.begin(step: step, command: "factorize", parameters: o.parameters,
                                        inputs: inputs, outputs: [step],
                                        shard: o.shard, restart: o.restart, pass: o.pass)
        summary.notes = session.notes
        if session.isComplete, let saved = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary.resultPath))) as? [String: Any] {
            summary.upToDate = true
            summary.rows = saved["rows"] as? Int ?? 0
            summary.explainedVarianceRatio = saved["explained_variance_ratio"] as? [Double] ?? []
            summary.objectives = saved["objective_per_pass"] as? [Double] ?? []
            summary.sampleObjective = saved["sample_objective"] as? Double ?? 0
            summary.sampleRows = saved["sample_rows"] as? Int ?? 0
            return summary
        }

        /// One pass over the blocks of this shard: rows under the mask.
        func pass(_ name: String, after: ((RunArrays.Block) throws -> Void)? = nil,
                  _ body: (RunArrays.Block, [Double], [Int]) async throws -> Void) async throws {
            for (i, b) in blocks.enumerated() where o.shard.owns(i) {
                progress(FactorizeProgress(phase: name, done: i + 1, total: blocks.count))
                guard let m = try await o.mask.mask(run, b, source: maskSource) else { try after?(b); continue }
                let (x, px) = try await run.rows(features, b, mask: m)
                if !px.isEmpty { try await body(b, x, px) }
                try after?(b)
            }
        }

        // The passes (StepPasses: one process, shards together, or map tasks and a reduce). Resume: the state after
        // the last merged pass of this generation (its own directory: other parameters or inputs are another
        // generation); shards started together resume from their published statistics instead.
        let statePath = session.statePath(StepPasses.stateFile)
        func waiting(_ message: String) { progress(FactorizeProgress(phase: message, done: 0, total: 1)) }
        let passes = try StepPasses(session: session, mode: o.pass, parameters: o.parameters.dictionary, timeout: o.waitTimeout,
                                    command: session.commandLine, waiting: waiting)
        var state = passes.readsState ? try DurableFile.read(statePath, as: FactorizeState.self) : nil
        func save(_ st: FactorizeState) throws { if passes.keepsState { try DurableFile.write(statePath, json: st) } }

        // Pass 1: moments (and, for NMF, a uniform sample of rows by reservoir; shards publish theirs, and the sample
        // is drawn from every shard's in proportion to its rows).
        var moments = Moments(d: d)
        var sample = [Double]()
        if let st = state {
            moments = st.moments
        } else {
            var reservoir = RowReservoir(size: o.sample, d: d, rng: SeededRandom(seed: o.seed, stream: 7, index: 0))
            moments = try await passes.merged("\(step)-moments", compute: {
                var m = Moments(d: d)
                try await pass("moments" + (o.method == .nmf ? " + sample" : "")) { _, x, px in
                    x.withUnsafeBufferPointer { m.add($0.baseAddress!, rows: px.count) }
                    if o.method == .nmf { reservoir.add(x, rows: px.count) }
                }
                if o.method == .nmf { try passes.publishSample(reservoir.rows, seen: reservoir.seen, d: d, size: o.sample, blocks: blocks.count, tag: "nmf-sample") }
                return m
            }, merge: { parts in parts.reduce(into: Moments(d: d)) { $0.merge($1) } })
            if o.method == .nmf { sample = try await passes.sample("nmf-sample", own: (reservoir.rows, reservoir.seen), d: d, size: o.sample).rows }
        }
        guard moments.count > 1 else { throw AnalysisError.input("no predicted pixels under the mask (\(o.mask.description)) in slices \(zs)") }
        summary.rows = Int(moments.count)
        if o.method == .pca && state == nil { state = FactorizeState(moments: moments); try save(state!) }

        switch o.method {
        case .pca:
            let model = PCAModel(moments: moments, k: o.k)
            summary.explainedVarianceRatio = model.explainedVarianceRatio
            let out = try await run.createChannels("pca", channels: model.k, session: session)
            let pyramid = run.pyramid(step, session: session)
            // The last pass writes the projections; what is merged is only that every shard wrote its blocks.
            _ = try await passes.merged("pca-written", compute: {
                try await pass("projections", after: { try pyramid.completed($0) }) { b, x, px in
                    let y = x.withUnsafeBufferPointer { model.transform($0.baseAddress!, rows: px.count) }
                    try await run.write(out, b, values: y, pixels: px)
                }
                return true
            }, merge: { _ in true })
            try write(["parameters": o.parameters.dictionary, "generation": session.generation, "rows": moments.count, "mean": model.mean, "components": model.components,
                       "explained_variance": model.explainedVariance, "explained_variance_ratio": model.explainedVarianceRatio,
                       "sign_convention": "largest-magnitude entry of each component positive (scikit-learn >= 1.5)"],
                      to: session.statePath("result.json"))
        case .nmf:
            let nd = o.nonneg.dims(d)
            var h: [Double], n: Int
            if let st = state, let saved = st.h {
                h = saved; n = st.sampleRows; summary.sampleObjective = st.sampleObjective; summary.objectives = st.objectives
                summary.sampleRows = n
            } else {
                n = sample.count / d
                summary.sampleRows = n
                if Double(n) < 0.9 * Double(min(o.sample, Int(moments.count))) {
                    summary.notes.append("the NMF sample has \(n) rows, not \(min(o.sample, Int(moments.count))): a map task held over 4× the average rows, "
                                         + "and every task's share shrank alike (the sample stays uniform)")
                }
                let xs = o.nonneg.apply(sample, d: d, minimum: moments.min)
                var w: [Double]
                (w, h) = NMF.nndsvda(xs, rows: n, d: nd, k: o.k)
                let fitPhase = NMFFitProgress.phase(rows: n, d: nd, k: o.k)
                progress(FactorizeProgress(phase: fitPhase, done: 0, total: NMFFitProgress.maxIterations))
                summary.sampleObjective = NMF.fit(xs, rows: n, d: nd, k: o.k, w: &w, h: &h, maxIter: NMFFitProgress.maxIterations) { i, _ in
                    progress(FactorizeProgress(phase: fitPhase, done: i, total: NMFFitProgress.maxIterations))
                }.last ?? 0
                state = FactorizeState(moments: moments, h: h, sampleRows: n, sampleObjective: summary.sampleObjective)
                try save(state!)
            }
            let out = try await run.createChannels("nmf", channels: o.k, session: session)
            let pyramid = run.pyramid(step, session: session)
            let writing: (RunArrays.Block) throws -> Void = { try pyramid.completed($0) }
            for p in (summary.objectives.count + 1)...max(1, o.passes) {
                let last = p == max(1, o.passes)
                let stats = try await passes.merged("nmf-pass-\(p)", compute: {
                    var stats = NMFStatistics(k: o.k, d: nd)
                    try await pass("NMF pass \(p)/\(o.passes)" + (last ? " (writing coefficients)" : ""), after: last ? writing : nil) { b, x, px in
                        let xt = o.nonneg.apply(x, d: d, minimum: moments.min)
                        let coef = xt.withUnsafeBufferPointer { NMF.coefficients($0.baseAddress!, rows: px.count, d: nd, h: h, k: o.k) }
                        xt.withUnsafeBufferPointer { stats.add(x: $0.baseAddress!, w: coef, rows: px.count) }
                        if last { try await run.write(out, b, values: coef, pixels: px) }
                    }
                    return stats
                }, merge: { parts in parts.reduce(into: NMFStatistics(k: o.k, d: nd)) { $0.merge($1) } })
                summary.objectives.append(stats.objective(h))
                if !last {
                    h = stats.updated(h)
                    state!.h = h; state!.objectives = summary.objectives
                    try save(state!)
                }
            }
            try write(["parameters": o.parameters.dictionary, "generation": session.generation, "rows": moments.count, "k": o.k, "nonneg": o.nonneg.rawValue,
                       "shift": o.nonneg == .shift ? moments.min : [], "components": h, "dimensions": nd,
                       "sample_rows": n, "sample_objective": summary.sampleObjective, "objective_per_pass": summary.objectives,
                       "objective": "0.5 * ||X - W H||_F^2 over all rows"], to: session.statePath("result.json"))
        }
        // Every shard wrote its blocks of the result (the last pass's statistics are merged only once all shards
        // published theirs, after writing): the generation's arrays move into place (whoever gets there first; the
        // swap is idempotent).
        try await run.finishPyramid(run.pyramid(step, session: session), slices: zs, passes: passes, tag: step)
        try passes.finish(arrays: [step], results: [session.statePath("result.json"): summary.resultPath])
        summary.wall = Date().timeIntervalSince(start)
        summary.peakRSS = peakRSS()
        return summary
    }
}

/// What a factorize run has finished: the moments pass, (NMF) the sample fit's H and the full passes so far.
struct FactorizeState: Codable {
    var moments: Moments
    var h: [Double]? = nil
    var sampleRows = 0, sampleObjective = 0.0
    var objectives: [Double] = []
}

/// Writes a JSON document durably and atomically.
func write(_ doc: [String: Any], to path: String) throws {
    try DurableFile.write(path, [UInt8](try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])))
}
