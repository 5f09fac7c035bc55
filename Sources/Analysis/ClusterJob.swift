import Foundation
import NeuralNet
import Pipeline
import VolumeStore

public struct ClusterOptions: Sendable {
    public enum Method: String, Sendable { case gmm, kmeans }
    /// A GMM's covariances: full, or diagonal (each cluster's variances along the input's axes only).
    public enum Covariance: String, Sendable { case full, diag }
    public var run: String
    /// The step's name: its array and RUN/analysis/NAME.json ("clusters", or "clusters_…" so that two clusterings of
    /// one run, e.g. of areas and of cortical layers, live side by side).
    public var name = "clusters"
    public var method: Method = .gmm
    public var covariance: Covariance = .full
    public var k = 4
    /// The run array clustered: nmf (default), pca or features.
    public var on = "nmf"
    /// The input's channels clustered, 0-based (nil: all), e.g. [0, 1, 2]: the first three PCs, as the paper clusters areas.
    public var components: [Int]?
    /// σ (source pixels) of a Gaussian mean of the input over each pixel's neighbourhood within the mask's class
    /// before clustering (0: none; see SpatialSmoothing).
    public var smooth = 0.0
    /// σ (source pixels) across the layers: with it the mean is oriented, `smooth` along the layers and this across
    /// them, the direction one per slice from the channels' structure tensor (see SpatialSmoothing). nil: isotropic.
    public var smoothAcross: Double?
    /// Cluster the input's `principal` leading principal components over the masked pixels (after any smoothing)
    /// instead of its channels (nil: the channels). Measured on the demo's layers (README "Discovery"): after the mean
    /// along the layers the 15 NMF channels are nearly collinear (4 PCs hold 99% of their variance), and full
    /// covariances fitted to the remaining ~1% let EM settle on partitions that do not follow the layers.
    public var principal: Int?
    /// Fit the mixture on this fraction of the masked pixels, those where the averaged input changes least (needs
    /// `smooth`), then assign every pixel. A pixel near a boundary averages two areas' latents (its 134-px view and
    /// the mean both straddle it); along every boundary such pixels form a population of their own, and a GMM fitted
    /// to all pixels spends a component on them and merges two areas instead (README "Discovery"). nil: all pixels.
    public var fitSteady: Double?
    public var mask: PixelMask = .predicted
    public var slices: [Int]?
    /// Rows sampled for k-means (the GMM's initialisation, or the k-means itself) and the silhouette (≤ 4,000 of them).
    public var sample = 20_000
    public var reg = 1e-6, tol = 1e-3
    public var maxIter = 100
    public var seed: UInt64 = 1
    /// Integer ROIs (e.g. cortical layers, areas) for per-ROI distributions, ARI and V-measure.
    public var rois: String?
    /// Two slices whose clusters are matched by the Jensen–Shannon distance of their per-ROI distributions.
    public var match: (Int, Int)?
    /// This process's share of the blocks; the shards exchange every pass's statistics (ShardExchange).
    public var shard: Shard = .all
    public var cacheBytes = 64 << 20
    /// Start a new generation (every shard given --restart joins the same one).
    public var restart = false
    /// Shards: how long to wait for the others' statistics before giving up (seconds).
    public var waitTimeout = 3600.0
    /// Map tasks and reduces instead of shards that run at once (StepPasses).
    public var pass: PassMode?
    public init(run: String) { self.run = run }

    /// The most passes over the blocks a run takes (map/reduce pairs, StepPasses): the principal components' moments
    /// (with `principal`), the change's histogram (with `fitSteady`), the sample, a GMM's EM iterations (fewer once converged), the assignments.
    public var mostPasses: Int { (method == .gmm ? 2 + maxIter : 2) + (principal == nil ? 0 : 1) + (fitSteady == nil ? 0 : 1) }

    var parameters: Parameters {
        // Options added later are recorded only when set, so that results computed before them stay up to date;
        // EM's settings only for a GMM (k-means never reads them, so changing them must not recompute it).
        var fields: [(String, String)] = [("method", method.rawValue)]
        if covariance != .full { fields.append(("covariance", covariance.rawValue)) }
        fields += [("k", "\(k)"), ("on", on), ("components", components.map { $0.map { String($0 + 1) }.joined(separator: ",") } ?? "all"),
                   ("smooth", "\(smooth)")]
        // The direction's rule: one vote per channel since 2026-11-30 (a generation resumed across the change would
        // lay its shards' means along different directions; the marker records the direction it used).
        if let smoothAcross { fields += [("smooth_across", "\(smoothAcross)"), ("direction", "channel-votes")] }
        if let principal { fields.append(("principal", "\(principal)")) }
        if let fitSteady { fields.append(("fit_steady", "\(fitSteady)")) }
        fields += [("mask", mask.description), ("sample", "\(sample)"), ("seed", "\(seed)")]
        if method == .gmm { fields += [("reg", "\(reg)"), ("tol", "\(tol)"), ("max_iter", "\(maxIter)")] }
        fields += [("slices", slices.map { $0.map(String.init).joined(separator: ",") } ?? "all"),
                   ("rois", rois ?? "-"), ("match", match.map { "\($0.0),\($0.1)" } ?? "-")]
        return Parameters(fields)
    }
}

public struct ClusterSummary: Sendable {
    /// The pixels assigned; `fittedRows` those the mixture was fitted on (fewer with `fitSteady`).
    public var rows = 0, fittedRows = 0, iterations = 0
    public var converged = false
    public var logLikelihood: [Double] = []
    public var reg = 0.0
    public var notes: [String] = []
    public var silhouette: Double?
    public var ari: Double?, vMeasure: (homogeneity: Double, completeness: Double, v: Double)?
    /// Per cluster: the fraction of its pixels in each ROI (ROI ids in `roiIds` order), over all slices.
    public var distributions: [[Double]] = []
    public var roiIds: [Int64] = []
    /// For `match`: JS distance matrix (clusters of A × clusters of B), argmin per A cluster, one-to-one assignment.
    public var jsDistances: [[Double]] = [], argmin: [Int] = [], oneToOne: [Int] = []
    public var resultPath = ""
    public var wall = 0.0, peakRSS = 0
    /// The saved result was made from the same parameters and inputs: nothing recomputed.
    public var upToDate = false
    /// With --smooth-across: per slice, the layers' direction the mean was laid along (degrees from the x axis
    /// towards y) and the structure tensor's coherence.
    public var layerDirections: [Int: (degrees: Double, coherence: Double)] = [:]
}

/// A finished generation's summary, saved beside its state (JSONEncoder round-trips doubles exactly, so a re-run
/// that finds the result up to date reports the same numbers).
struct SavedClusterSummary: Codable {
    var rows: Int, iterations: Int, converged: Bool, logLikelihood: [Double], reg: Double, notes: [String]
    /// Absent in results saved before --fit-steady existed (then every assigned pixel was fitted).
    var fittedRows: Int?
    var silhouette: Double?, ari: Double?, vMeasure: [Double]?
    var distributions: [[Double]], roiIds: [Int64], jsDistances: [[Double]], argmin: [Int], oneToOne: [Int], resultPath: String
    /// Slice → [degrees, coherence] (absent in results saved before --smooth-across existed).
    var layerDirections: [String: [Double]]?

    init(_ s: ClusterSummary) {
        rows = s.rows; fittedRows = s.fittedRows; iterations = s.iterations; converged = s.converged; logLikelihood = s.logLikelihood; reg = s.reg; notes = s.notes
        silhouette = s.silhouette; ari = s.ari; vMeasure = s.vMeasure.map { [$0.homogeneity, $0.completeness, $0.v] }
        distributions = s.distributions; roiIds = s.roiIds; jsDistances = s.jsDistances; argmin = s.argmin; oneToOne = s.oneToOne
        resultPath = s.resultPath
        layerDirections = s.layerDirections.isEmpty ? nil : Dictionary(uniqueKeysWithValues: s.layerDirections.map { ("\($0.key)", [$0.value.degrees, $0.value.coherence]) })
    }

    var summary: ClusterSummary {
        var s = ClusterSummary()
        s.rows = rows; s.fittedRows = fittedRows ?? rows; s.iterations = iterations; s.converged = converged; s.logLikelihood = logLikelihood; s.reg = reg; s.notes = notes
        s.silhouette = silhouette; s.ari = ari; s.vMeasure = vMeasure.map { ($0[0], $0[1], $0[2]) }
        s.distributions = distributions; s.roiIds = roiIds; s.jsDistances = jsDistances; s.argmin = argmin; s.oneToOne = oneToOne
        s.resultPath = resultPath
        for (z, v) in layerDirections ?? [:] { if let z = Int(z), v.count == 2 { s.layerDirections[z] = (v[0], v[1]) } }
        return s
    }
}

/// `brainmap cluster`: a Gaussian mixture (EM, full covariances, k-means++ initialisation on a sample; one pass per
/// iteration over mergeable statistics) or k-means, on a run's factor coefficients; writes `clusters` (u1: cluster + 1,
/// 0 outside the mask) and the per-ROI distributions, metrics and cross-slice matching.
public final class ClusterJob: @unchecked Sendable {
    public let options: ClusterOptions
    public init(options: ClusterOptions) {
        var o = options   // paths recorded in one spelling, however a caller typed them
        o.rois = o.rois.map(Run.canonicalSource); o.mask = o.mask.canonical
        self.options = o
    }

    /// pca and nmf hold coefficients only where factorize computed them (its --slices and mask); a clustering that
    /// asks for more would silently cluster the part that has them and leave the rest 0, as if outside the mask.
    /// Refused before anything is touched, saying what the factorisation covers.
    static func checkCoverage(_ o: ClusterOptions, slices zs: [Int], stride: Int, factorized f: [String: String]?) throws {
        guard o.on != "features", let f else { return }
        let redo = "brainmap factorize \(o.run) --method \(o.on)"
        if let s = f["slices"], s != "all" {
            let covered = Set(s.split(separator: ",").compactMap { Int($0) })
            let missing = zs.filter { !covered.contains($0) }
            if !missing.isEmpty {
                let list = missing.prefix(8).map(String.init).joined(separator: ",") + (missing.count > 8 ? ",… (\(missing.count) slices)" : "")
                throw AnalysisError.input("\(o.on) was factorized over other slices than these, so slice \(list) has no coefficients to cluster; "
                                          + "nothing was changed. Give --slices among the factorized ones (status shows its command), or factorize "
                                          + "those slices too (\(redo) --slices …, with its other parameters as before)")
            }
        }
        guard let m = f["mask"] else { return }
        let covered = PixelMask(recorded: m)
        if covered == .predicted || covered == o.mask { return }
        // A class (eroded or not) is covered by the same class eroded at least as much (erosion radii are applied in
        // run pixels, source pixels / stride).
        if case let .within(c, e) = o.mask, case let .within(fc, fe) = covered, c == fc, e / max(1, stride) >= fe / max(1, stride) { return }
        throw AnalysisError.input("\(o.on) was factorized under the mask '\(m)' only, and this clustering's mask (\(o.mask.description)) reaches pixels "
                                  + "outside it, which have no coefficients; nothing was changed. Cluster within the same mask (e.g. --within / --erode "
                                  + "as factorize had them), or factorize without it (\(redo))")
    }

    public func run(progress: @escaping (StepProgress) -> Void = { _ in }) async throws -> ClusterSummary {
        let o = options, start = Date()
        // A σ well below a pixel averages nothing (and at 1e-300 its weights are NaN, which surfaced as "0 pixels").
        guard o.smooth == 0 || o.smooth >= 0.5 else {
            throw AnalysisError.input("--smooth \(o.smooth): a σ below half a source pixel averages nothing; give 0 (no smoothing) or ≥ 0.5")
        }
        // The direction is read as the one the mean is longest along; a longer σ across would lay it over the layers.
        if let across = o.smoothAcross, o.smooth > 0, !(across >= 0.5 && across <= o.smooth) {
            throw AnalysisError.input("--smooth-across \(across): σ across the layers must be ≥ 0.5 and ≤ --smooth \(o.smooth) (σ along them; "
                                      + "the mean is laid along the layers, e.g. --smooth 96 --smooth-across 16)")
        }
        guard (2...255).contains(o.k) else { throw AnalysisError.input("--k must be 2…255 (clusters are stored as u1: cluster + 1, 0 outside the mask); got \(o.k)") }
        var ctx = SourceOptions(cacheBytes: o.cacheBytes)
        ctx.cache = ChunkCache(capacity: o.cacheBytes)
        let run = try await RunArrays(root: o.run, context: ctx)
        guard o.name == "clusters" || (o.name.hasPrefix("clusters_") && o.name.count > 9
                && o.name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw AnalysisError.input("--name must be 'clusters' or 'clusters_' followed by lowercase letters, digits or _ (e.g. clusters_areas); got '\(o.name)'")
        }
        let input = try await run.channels(o.on)
        let channels = o.components ?? Array(0..<input.shape[0])
        if channels.isEmpty || channels.contains(where: { $0 < 0 || $0 >= input.shape[0] }) || Set(channels).count != channels.count {
            throw AnalysisError.input("--components \(channels.map { String($0 + 1) }.joined(separator: ",")): \(o.on) has channels 1…\(input.shape[0]); name each at most once")
        }
        let inputDims = channels.count
        if let n = o.principal, !(1...inputDims).contains(n) {
            throw AnalysisError.input("--principal \(n): the clustered input has \(inputDims) channels; give 1…\(inputDims) principal components")
        }
        // The dimension clustered: the channels, or their leading principal components.
        let d = o.principal ?? inputDims
        guard o.smooth >= 0, o.smooth <= Double(4 * run.block * run.stride) else {
            throw AnalysisError.input("--smooth \(o.smooth): a Gaussian σ in source pixels, 0…\(4 * run.block * run.stride) (0: no smoothing)")
        }
        if let across = o.smoothAcross {
            guard o.smooth > 0 else { throw AnalysisError.input("--smooth-across \(across) needs --smooth (σ along the layers, > 0)") }
            guard across > 0, across <= Double(4 * run.block * run.stride) else {
                throw AnalysisError.input("--smooth-across \(across): a Gaussian σ across the layers in source pixels, > 0 and ≤ \(4 * run.block * run.stride)")
            }
        }
        if let q = o.fitSteady {
            guard o.smooth > 0 else { throw AnalysisError.input("--fit-steady \(q) needs --smooth (it picks pixels by how fast the averaged input changes)") }
            guard q > 0, q < 1 else { throw AnalysisError.input("--fit-steady \(q): the fraction of the pixels the mixture is fitted on, above 0 and below 1 (e.g. 0.7)") }
        }
        let zs = o.slices ?? Array(0..<run.depth)
        if let bad = zs.first(where: { $0 < 0 || $0 >= run.depth }) { throw AnalysisError.input("--slices: slice \(bad) is outside the run (z = 0..<\(run.depth))") }
        if let (a, b) = o.match, a == b { throw AnalysisError.input("--match \(a),\(b) names one slice twice; give two different slices, e.g. 3,4") }
        if let (a, b) = o.match, !zs.contains(a) || !zs.contains(b) || o.rois == nil {
            throw AnalysisError.input("--match \(a),\(b) needs both slices among --slices and --rois")
        }
        let predicted = run.run.predictedSliceVersions()
        if let (a, b) = o.match, !run.run.manifest.steps.isEmpty, let z = [a, b].first(where: { predicted[$0] == nil }) {
            throw AnalysisError.input("--match \(a),\(b): slice \(z) was never predicted; match two predicted slices (brainmap status \(o.run) lists them)")
        }
        // Only predicted slices count: the others have no pixels to cluster whatever was factorized.
        try Self.checkCoverage(o, slices: zs.filter { predicted[$0] != nil }, stride: run.stride,
                               factorized: run.run.manifest.steps[o.on]?.parameters)
        // ROIs read from the array this step writes would score the clustering against itself, and make the step
        // stale the moment it finishes.
        let maskPath: String? = if case let .source(s) = o.mask { s } else { nil }
        let own = Run.canonicalSource(o.run + "/" + o.name)
        for (flag, path) in [("--rois", o.rois), ("--mask", maskPath)] {
            guard let path else { continue }
            let p = Run.canonicalSource(path)
            if p == own || p.hasPrefix(own + "/") {
                throw AnalysisError.input("\(flag) \(path) is the array this step writes (\(o.name)); give \(flag == "--rois" ? "ROIs" : "a mask") "
                                          + "from another array, or another --name")
            }
        }
        let maskSource: ZarrArray? = if let maskPath { try await run.regions(maskPath) } else { nil }
        var rois: ZarrArray?
        if let r = o.rois { rois = try await run.regions(r) }
        let blocks = run.blocks(zs)
        var summary = ClusterSummary()

        let inputs = try run.inputs(slices: o.slices, on: o.on, sources: [maskPath, o.rois])
        if run.run.wouldStartGeneration(o.name, parameters: o.parameters, inputs: inputs, restart: o.restart, pass: o.pass) {
            if try await !o.mask.hasPixels(o.k, run, blocks, source: maskSource) {
                throw AnalysisError.input("fewer than --k \(o.k) predicted pixels under the mask (\(o.mask.description)) in slices \(zs); nothing was changed "
                                          + "(brainmap status \(o.run) lists the predicted slices)")
            }
            // A match slice without a pixel under the mask can only be refused after the clustering: say so first.
            if let (a, b) = o.match {
                for z in [a, b] where try await !o.mask.hasPixels(1, run, blocks.filter { $0.z == z }, source: maskSource) {
                    throw AnalysisError.input("--match \(a),\(b): slice \(z) has no predicted pixel under the mask (\(o.mask.description)); "
                                              + "nothing was changed. Match two slices the mask covers")
                }
            }
        }
        let session = try run.run.begin(step: o.name, command: "cluster", parameters: o.parameters,
                                        inputs: inputs,
                                        outputs: [o.name], shard: o.shard, restart: o.restart, pass: o.pass)
        summary.notes = session.notes
        summary.resultPath = run.analysisDirectory + "/\(o.name).json"
        if session.isComplete, let saved = try DurableFile.read(session.statePath("summary.json"), as: SavedClusterSummary.self) {
            summary = saved.summary
            summary.notes = summary.notes.filter { !$0.contains("from scratch") }
            summary.upToDate = true
            return summary
        }
        func waiting(_ message: String) { progress(StepProgress(phase: message, done: 0, total: 1)) }
        // The passes (StepPasses: one process, shards together, or map tasks and a reduce).
        let passes = try StepPasses(session: session, mode: o.pass, parameters: o.parameters.dictionary, timeout: o.waitTimeout,
                                    command: session.commandLine, waiting: waiting)
        // A reduce reads no rows (it merges published statistics), so only the processes that compute smooth.
        let (smoothed, change) = o.smooth > 0 && passes.role != .reduce
            ? try await smooth(run, input, channels: channels, blocks: blocks, session: session, maskSource: maskSource,
                               directions: &summary.layerDirections, progress: progress) : (nil, nil)
        if o.smooth > 0 && passes.role == .reduce { summary.layerDirections = Self.savedDirections(session) }
        // The input's rows (the chosen channels, smoothed or not) per block under the mask.
        // With `fitSteady`, the passes that fit (the sample, EM) take only the rows whose change is ≤ `steadyBelow`.
        var steadyBelow: Double?, assignedRows: Int?
        func inputPass(_ name: String, fitting: Bool = false, after: ((RunArrays.Block) throws -> Void)? = nil,
                       _ body: (RunArrays.Block, [Double], [Int]) async throws -> Void) async throws {
            for (i, b) in blocks.enumerated() where o.shard.owns(i) {
                progress(StepProgress(phase: name, done: i + 1, total: blocks.count))
                guard let m = try await o.mask.mask(run, b, source: maskSource) else { try after?(b); continue }
                if let smoothed {
                    var (x, px) = try await run.rows(smoothed, b, mask: m)
                    if fitting, let limit = steadyBelow, !px.isEmpty {
                        guard let change else { preconditionFailure("--fit-steady's threshold without its change array") }
                        (x, px) = Self.steadyRows(x, px, try await run.rows(change, b, mask: m), below: limit, d: inputDims)
                    }
                    if !px.isEmpty { try await body(b, x, px) }
                } else {
                    let (all, px) = try await run.rows(input, b, mask: m)
                    if !px.isEmpty {
                        if inputDims == input.shape[0] { try await body(b, all, px) } else {
                            let c = input.shape[0]
                            var x = [Double](repeating: 0, count: px.count * inputDims)
                            for i in 0..<px.count { for (j, ch) in channels.enumerated() { x[i * inputDims + j] = all[i * c + ch] } }
                            try await body(b, x, px)
                        }
                    }
                }
                try after?(b)
            }
        }
        // --principal: one pass of mergeable moments of the input rows (exact in any split into blocks and shards),
        // PCA from them; saved for the later passes of map tasks and for a resume.
        func principalComponents(_ n: Int) async throws -> PCAModel {
            let path = session.statePath("principal.json")
            if passes.readsState, let saved = try DurableFile.read(path, as: PCAModel.self) { return saved }
            let m = try await passes.merged("principal-moments", compute: {
                var m = Moments(d: inputDims)
                try await inputPass("principal components") { _, x, px in x.withUnsafeBufferPointer { m.add($0.baseAddress!, rows: px.count) } }
                return m
            }, merge: { parts in parts.reduce(into: Moments(d: inputDims)) { $0.merge($1) } })
            guard m.count > 0 else { throw AnalysisError.input("no pixels under the mask (\(o.mask.description)) for --principal") }
            let model = PCAModel(moments: m, k: n)
            if passes.keepsState { try DurableFile.write(path, json: model) }
            return model
        }
        let principal: PCAModel? = if let n = o.principal { try await principalComponents(n) } else { nil }
        // The rows clustered: the input's, or their projections onto the principal components.
        func pass(_ name: String, fitting: Bool = false, after: ((RunArrays.Block) throws -> Void)? = nil,
                  _ body: (RunArrays.Block, [Double], [Int]) async throws -> Void) async throws {
            guard let principal else { return try await inputPass(name, fitting: fitting, after: after, body) }
            try await inputPass(name, fitting: fitting, after: after) { b, x, px in
                try await body(b, x.withUnsafeBufferPointer { principal.transform($0.baseAddress!, rows: px.count) }, px)
            }
        }
        if let q = o.fitSteady {
            // The change's q-quantile over all masked pixels, from a histogram every shard adds its blocks to; saved for
            // the later passes of map tasks and for a resume (as the principal components are).
            struct Steadiness: Codable { var limit: Double, total: Int }
            let path = session.statePath("steadiness.json")
            var found = passes.readsState ? try DurableFile.read(path, as: Steadiness.self) : nil
            if found == nil {
                let histogram = try await passes.merged("steadiness", compute: {
                    var h = ChangeHistogram()
                    guard let change else { return h }
                    for (i, b) in blocks.enumerated() where o.shard.owns(i) {
                        progress(StepProgress(phase: "how fast the mean changes", done: i + 1, total: blocks.count))
                        guard let m = try await o.mask.mask(run, b, source: maskSource) else { continue }
                        h.add(try await run.rows(change, b, mask: m).x)
                    }
                    return h
                }, merge: { parts in parts.reduce(into: ChangeHistogram()) { $0.merge($1) } })
                found = Steadiness(limit: histogram.quantile(q), total: histogram.total)
                if passes.keepsState { try DurableFile.write(path, json: found!) }
            }
            steadyBelow = found!.limit; assignedRows = found!.total
        }
        // Resume: the parameters after the last merged pass of this generation (its state.json).
        let statePath = session.statePath(StepPasses.stateFile)
        var state = passes.readsState ? try DurableFile.read(statePath, as: EMState.self) : nil
        func save(_ st: EMState) throws { if passes.keepsState { try DurableFile.write(statePath, json: st) } }

        // Pass 1: a sample (reservoir, seeded) for k-means — the GMM's start — and the silhouette. Shards publish
        // theirs; the sample is drawn from every shard's in proportion to its rows (the same rows in every process).
        var reservoir = RowReservoir(size: o.sample, d: d, rng: SeededRandom(seed: o.seed, stream: 11, index: 0))
        let silhouettePath = session.statePath("silhouette-sample.f64"), silhouetteRows = 4000
        // The silhouette's rows: at most 4000, evenly spaced through the sample — a merged sample is the shards' uniform
        // parts one after the other, so a prefix would come from the first shards only.
        func spread(_ rows: [Double]) -> [Double] {
            let n = rows.count / d, m = min(n, silhouetteRows)
            guard m < n else { return rows }
            var out: [Double] = []
            out.reserveCapacity(m * d)
            for i in 0..<m { let r = i * n / m; out += rows[(r * d)..<((r + 1) * d)] }
            return out
        }
        var sample: [Double]?
        func samplePass() async throws -> Int {
            try await pass("sample", fitting: true) { _, x, px in reservoir.add(x, rows: px.count) }
            try passes.publishSample(reservoir.rows, seen: reservoir.seen, d: d, size: o.sample, blocks: blocks.count, tag: "cluster-sample")
            return reservoir.seen
        }
        func sharedSample() async throws -> (rows: [Double], seen: Int) {
            try await passes.sample("cluster-sample", own: (reservoir.rows, reservoir.seen), d: d, size: o.sample)
        }
        if state == nil {
            _ = try await passes.merged("cluster-sampling", compute: samplePass, merge: { $0.reduce(0, +) })
            let (rows, seen) = try await sharedSample()
            sample = rows
            // The silhouette's rows, kept for the process that finishes the step: a later reduce may have other map
            // tasks (another N) than the ones that published this pass's samples.
            if passes.keepsState { try DurableFile.write(silhouettePath, spread(rows).withUnsafeBytes { Array($0) }) }
            let n = rows.count / d
            guard seen >= o.k else {
                if let q = o.fitSteady, let all = assignedRows {
                    throw AnalysisError.input("only \(seen) of the \(all) pixels under the mask (\(o.mask.description)) are among the steadiest \(q); need at least --k \(o.k): raise --fit-steady")
                }
                throw AnalysisError.input("only \(seen) pixels under the mask (\(o.mask.description)); need at least --k \(o.k)")
            }
            guard n >= o.k else {
                throw AnalysisError.input("the merged sample has \(n) rows, fewer than --k \(o.k) (a map task held most of the \(seen) pixels under the mask); "
                                          + "give --sample larger, or fewer map tasks")
            }
            let (centroids, labels) = KMeans.fit(rows, rows: n, d: d, k: o.k, seed: o.seed)
            var st = EMState(rows: seen, centroids: centroids, reg: o.reg)
            if o.method == .gmm {
                // One hard M-step from the k-means partition of the sample (GaussianMixture's kmeans initialisation).
                var s = GMMStatistics(k: o.k, d: d)
                for i in 0..<n {
                    s.resp[labels[i]] += 1
                    for a in 0..<d {
                        s.sumX[labels[i] * d + a] += rows[i * d + a]
                        for b in 0..<d { s.sumXX[(labels[i] * d + a) * d + b] += rows[i * d + a] * rows[i * d + b] }
                    }
                }
                st.set(try maximize(s, reg: &st.reg, notes: &st.notes))
            }
            state = st
            try save(st)
        }
        var st = state!
        if let all = assignedRows, let limit = steadyBelow {
            // The count fitted, not --fit-steady's fraction: many pixels sharing one change (a constant region) can
            // all fall at or below the threshold.
            summary.notes.append(String(format: "fitted on %d of the %d pixels (%.1f%%) where the averaged input changes least (Σ|∇|² ≤ %.3g per run pixel²); every pixel assigned",
                                        st.rows, all, 100 * Double(st.rows) / Double(max(all, 1)), limit))
        }
        // The pixels clustered: with `fitSteady` all of them are assigned, the fit saw `st.rows`.
        summary.rows = assignedRows ?? st.rows; summary.fittedRows = st.rows; summary.logLikelihood = st.logLikelihood; summary.iterations = st.logLikelihood.count
        summary.converged = st.converged
        var model = try st.model(d: d)
        if o.method == .gmm {
            // EM, one pass per iteration over mergeable statistics.
            var previous = summary.logLikelihood.last ?? -Double.infinity
            var it = summary.iterations
            while !summary.converged && it < o.maxIter {
                it += 1
                let current = model!
                let stats = try await passes.merged("gmm-iteration-\(it)", compute: {
                    var s = GMMStatistics(k: o.k, d: d)
                    try await pass("EM iteration \(it)", fitting: true) { _, x, px in x.withUnsafeBufferPointer { s.add(x: $0.baseAddress!, rows: px.count, model: current) } }
                    return s
                }, merge: { parts in parts.reduce(into: GMMStatistics(k: o.k, d: d)) { $0.merge($1) } })
                model = try maximize(stats, reg: &st.reg, notes: &st.notes)
                st.set(model!)
                let ll = stats.logLikelihood / stats.rows
                summary.logLikelihood.append(ll); summary.iterations = it
                if abs(ll - previous) < o.tol { summary.converged = true }
                previous = ll
                st.logLikelihood = summary.logLikelihood; st.converged = summary.converged
                try save(st)
            }
        }
        summary.notes += st.notes
        if o.method == .gmm && !summary.converged { summary.notes.append("EM did not converge in \(o.maxIter) iterations (tol \(o.tol))") }
        let reg = st.reg, centroids = st.centroids
        summary.reg = reg

        // Final pass: assignments, clusters array, per-ROI counts per slice.
        let out = try await run.createLabels(o.name, session: session)
        func assign(_ x: [Double], rows m: Int) -> [Int] {
            if let g = model { return x.withUnsafeBufferPointer { g.predict($0.baseAddress!, rows: m) } }
            return (0..<m).map { i in (0..<o.k).min { a, b in
                (0..<d).reduce(0.0) { $0 + pow(x[i * d + $1] - centroids[a * d + $1], 2) } < (0..<d).reduce(0.0) { $0 + pow(x[i * d + $1] - centroids[b * d + $1], 2) }
            }! }
        }
        // Per slice, per cluster: pixels per ROI id ("z" → cluster → "id" → count; strings so that shards publish it).
        let pyramid = run.pyramid(o.name, session: session)
        let counts = try await passes.merged("cluster-counts", compute: {
            var counts: [String: [[String: Int]]] = [:]
            try await pass("assigning clusters", after: { try pyramid.completed($0) }) { b, x, px in
                let c = assign(x, rows: px.count)
                let (h, w) = run.extent(b)
                var plane = [UInt8](repeating: 0, count: h * w)
                for (i, p) in px.enumerated() { plane[p] = UInt8(c[i] + 1) }
                try await out.write(Box([b.z..<(b.z + 1), (b.by * run.block)..<(b.by * run.block + h), (b.bx * run.block)..<(b.bx * run.block + w)]), plane)
                guard let rois else { return }
                let ids = try await run.regionIds(rois, b)
                var table = counts["\(b.z)"] ?? Array(repeating: [:], count: o.k)
                for (i, p) in px.enumerated() where ids[p] != 0 { table[c[i]]["\(ids[p])", default: 0] += 1 }
                counts["\(b.z)"] = table
            }
            return counts
        }, merge: { parts in
            var counts: [String: [[String: Int]]] = [:]
            for part in parts {
                for (z, t) in part {
                    var mine = counts[z] ?? Array(repeating: [:], count: o.k)
                    for cl in 0..<o.k { for (id, n) in t[cl] { mine[cl][id, default: 0] += n } }
                    counts[z] = mine
                }
            }
            return counts
        })
        // The silhouette's rows, when this process did not draw the sample above (it resumed): one process draws it
        // again (the same seeded reservoir), a reduce reads the shards' published samples.
        if sample == nil, passes.keepsState, let saved = FileManager.default.contents(atPath: silhouettePath) {
            sample = saved.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
        if sample == nil {
            if passes.role == .whole { _ = try await samplePass() }
            sample = try await sharedSample().rows
        }
        try await run.finishPyramid(pyramid, slices: zs, passes: passes, tag: o.name)
        let sampled = spread(sample!)
        let sil = sampled.count / d
        // Columns: ROI ids in order; contingency over all slices.
        let order = Set(counts.values.flatMap { $0.flatMap(\.keys) }).compactMap { Int64($0) }.sorted()
        func table(_ z: String?) -> [[Int]] {
            (0..<o.k).map { cl in order.map { id in
                z.map { counts[$0]?[cl]["\(id)"] ?? 0 } ?? counts.values.reduce(0) { $0 + ($1[cl]["\(id)"] ?? 0) }
            } }
        }
        // Silhouette on (part of) the sample, with its assignments.
        let subset = Array(sampled[0..<(sil * d)])
        summary.silhouette = ClusterMetrics.silhouette(subset, rows: sil, d: d, labels: assign(subset, rows: sil))
        if rois != nil {
            let all = table(nil)
            summary.roiIds = order
            summary.distributions = all.map { row in let s = Double(max(1, row.reduce(0, +))); return row.map { Double($0) / s } }
            // Scores need clustered pixels inside the ROIs: none (another grid, disjoint ROIs) is said, not scored 1.
            if all.joined().reduce(0, +) > 1 {
                summary.ari = ClusterMetrics.adjustedRand(table: transpose(all))
                summary.vMeasure = ClusterMetrics.vMeasure(table: transpose(all))
            } else {
                summary.notes.append("fewer than 2 clustered pixels lie inside an ROI of \(o.rois!): no ARI or V-measure")
            }
            if let (a, b) = o.match {
                for z in [a, b] where table("\(z)").joined().reduce(0, +) == 0 {
                    throw AnalysisError.input("--match \(a),\(b): slice \(z) has no pixels under the mask (\(o.mask.description)) inside an ROI of \(o.rois!); "
                                              + "was it predicted? Match two slices that predict and the ROIs cover")
                }
                let da = table("\(a)").map { $0.map(Double.init) }, db = table("\(b)").map { $0.map(Double.init) }
                (summary.jsDistances, summary.argmin, summary.oneToOne) = ClusterMetrics.match(da, db)
            }
        }
        var doc: [String: Any] = ["parameters": o.parameters.dictionary, "generation": session.generation, "rows": summary.rows, "k": o.k, "method": o.method.rawValue,
                                  "covariance_type": o.covariance.rawValue,
                                  "sample_rows_for_silhouette": sil, "notes": summary.notes,
                                  "reg_covar": reg, "iterations": summary.iterations, "converged": summary.converged,
                                  "mean_log_likelihood_per_iteration": summary.logLikelihood]
        // Absent where scikit-learn's silhouette_score refuses (fewer than two clusters in the sample).
        if let v = summary.silhouette { doc["silhouette_on_sample"] = v }
        // With --fit-steady: the pixels the mixture was fitted on (the silhouette's sample is drawn from them too).
        if o.fitSteady != nil { doc["fitted_rows"] = summary.fittedRows }
        if !summary.layerDirections.isEmpty {
            doc["layer_direction_per_slice"] = Dictionary(uniqueKeysWithValues: summary.layerDirections.map {
                ("\($0.key)", ["degrees_from_x_towards_y": $0.value.degrees, "structure_tensor_coherence": $0.value.coherence])
            })
        }
        if let p = principal {
            doc["principal_components"] = ["mean": p.mean, "components": p.components, "explained_variance_ratio": p.explainedVarianceRatio]
        }
        if let g = model { doc["weights"] = g.weights; doc["means"] = g.means; doc["covariances"] = g.covariances }
        else { doc["centroids"] = centroids }
        if rois != nil {
            doc["roi_ids"] = summary.roiIds; doc["distribution_per_cluster_over_rois"] = summary.distributions
            if let a = summary.ari { doc["adjusted_rand_index"] = a }
            if let v = summary.vMeasure { doc["homogeneity"] = v.homogeneity; doc["completeness"] = v.completeness; doc["v_measure"] = v.v }
        }
        if let (a, b) = o.match {
            doc["match"] = ["slices": [a, b], "js_distance": summary.jsDistances, "argmin": summary.argmin, "one_to_one": summary.oneToOne,
                            "rule": "cluster i of slice A ↔ argmin_j JS(per-ROI distribution of i in A, of j in B); one_to_one: Hungarian on the same distances, over the clusters present in both slices; −1: the cluster has no pixel in slice A, or no partner left"]
        }
        try write(doc, to: session.statePath("result.json"))
        // Every shard wrote its blocks (the counts exchange above waited for all): clusters moves into place.
        try DurableFile.write(session.statePath("summary.json"), json: SavedClusterSummary(summary))
        try passes.finish(arrays: [o.name], results: [session.statePath("result.json"): summary.resultPath])
        // The smoothing scratch (as large as the clustered channels over the run) is not read once the step is complete
        // (every shard passed the counts exchange above); a crash before this leaves it, harmlessly.
        if o.smooth > 0 { for a in ["smoothed", "change"] { try? FileManager.default.removeItem(atPath: session.directory + "/" + a) } }
        summary.wall = Date().timeIntervalSince(start)
        summary.peakRSS = peakRSS()
        return summary
    }

    /// The input's smoothed channels (SpatialSmoothing, within the mask's class: `--within`'s class, else predicted
    /// tissue) at the mask's pixels, computed once into a scratch array of this generation that every pass then reads
    /// like the input; each shard smooths its own blocks. A marker per shard says the scratch is whole (resume).
    /// Oriented (--smooth-across): first each slice's direction from the structure tensor over all of its blocks —
    /// every shard sums the same blocks in the same order, so all lay the mean the same way without an exchange.
    /// The per-slice directions a smoothing marker records (`degrees_zN`, `coherence_zN`).
    private static func directions(_ saved: [String: Double]) -> [Int: (degrees: Double, coherence: Double)] {
        var d: [Int: (degrees: Double, coherence: Double)] = [:]
        for (k, v) in saved where k.hasPrefix("degrees_z") {
            if let z = Int(k.dropFirst(9)) { d[z] = (v, saved["coherence_z\(z)"] ?? 0) }
        }
        return d
    }

    /// A reduce smooths nothing; the directions are those any map task found (every shard computes the same ones).
    private static func savedDirections(_ session: StepSession) -> [Int: (degrees: Double, coherence: Double)] {
        let dir = session.directory
        let markers = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("smoothed-") && $0.hasSuffix(".done") }.sorted()
        for m in markers { if let saved = try? DurableFile.read(dir + "/" + m, as: [String: Double].self) { return directions(saved) } }
        return [:]
    }

    private func smooth(_ run: RunArrays, _ input: ZarrArray, channels: [Int], blocks: [RunArrays.Block], session: StepSession,
                        maskSource: ZarrArray?, directions: inout [Int: (degrees: Double, coherence: Double)],
                        progress: (StepProgress) -> Void) async throws -> (smoothed: ZarrArray, change: ZarrArray?) {
        let o = options
        let s = SpatialSmoothing(sigma: o.smooth / Double(run.stride), across: o.smoothAcross.map { $0 / Double(run.stride) })
        let support: @Sendable (UInt8) -> Bool
        if case let .within(c, _) = o.mask { support = { $0 == c } } else { support = { $0 != 0 } }
        let store = FileChunkStore(root: session.directory)
        let md = ArrayMetadata(shape: [channels.count] + run.labels.shape, chunks: [channels.count, 1, run.block, run.block], dtype: .float32,
                               fillValue: .nan, codec: try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1))
        try store.putSync("smoothed/.zarray", md.zarrV2JSON())
        let scratch = ZarrArray(store: store, path: "smoothed", metadata: md)
        let change = o.fitSteady == nil ? nil : try changeScratch(session, like: scratch)
        let marker = session.statePath("smoothed-\(o.shard.fileTag).done")
        if let saved = try? DurableFile.read(marker, as: [String: Double].self) {
            directions = Self.directions(saved)
            return (scratch, change)
        }
        var along: [Int: (y: Double, x: Double)] = [:]
        if s.across != nil {
            var tensors: [Int: [Double]] = [:]
            for (i, b) in blocks.enumerated() {
                progress(StepProgress(phase: "the layers' direction (structure tensor)", done: i + 1, total: blocks.count))
                guard let m = try await o.mask.mask(run, b, source: maskSource) else { continue }
                let j = try await s.structureTensor(run, input, b, channels: channels, mask: m, support: support)
                tensors[b.z] = zip(tensors[b.z] ?? [Double](repeating: 0, count: j.count), j).map { $0 + $1 }
            }
            // A slice without a direction (no masked pixel with supported neighbours — e.g. no cortex left after
            // erosion — or channels that do not vary) is averaged isotropically at σ, and has no angle in the result;
            // failing here would come after the step began, with the other slices clusterable.
            for (z, j) in tensors {
                guard let (u, coherence) = SpatialSmoothing.layerDirection(j) else { continue }
                along[z] = u
                directions[z] = (atan2(u.y, u.x) * 180 / .pi, coherence)
            }
        }
        for (i, b) in blocks.enumerated() where o.shard.owns(i) {
            progress(StepProgress(phase: "smoothing (σ \(o.smooth) px)", done: i + 1, total: blocks.count))
            guard let m = try await o.mask.mask(run, b, source: maskSource) else { continue }
            if let change {
                let (x, px, g) = try await s.rowsWithChange(run, input, b, channels: channels, mask: m, support: support, along: along[b.z])
                if !px.isEmpty { try await run.write(scratch, b, values: x, pixels: px); try await run.write(change, b, values: g, pixels: px) }
            } else {
                let (x, px) = try await s.rows(run, input, b, channels: channels, mask: m, support: support, along: along[b.z])
                if !px.isEmpty { try await run.write(scratch, b, values: x, pixels: px) }
            }
        }
        var record = ["blocks": Double(blocks.count), "sigma_run_pixels": s.sigma]
        for (z, d) in directions { record["degrees_z\(z)"] = d.degrees; record["coherence_z\(z)"] = d.coherence }
        try DurableFile.write(marker, json: record)
        return (scratch, change)
    }

    /// The scratch beside `smoothed` holding, per pixel, how fast the mean changes (SpatialSmoothing.rowsWithChange).
    private func changeScratch(_ session: StepSession, like smoothed: ZarrArray) throws -> ZarrArray {
        let store = FileChunkStore(root: session.directory)
        let s = smoothed.metadata
        let md = ArrayMetadata(shape: [1] + s.shape.dropFirst(), chunks: [1] + s.chunks.dropFirst(), dtype: .float32, fillValue: .nan,
                               codec: try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1))
        try store.putSync("change/.zarray", md.zarrV2JSON())
        return ZarrArray(store: store, path: "change", metadata: md)
    }

    /// The rows (and their pixels) whose change is at most `below`. A pixel without a change (NaN: a channel without
    /// support where the first had it) is not steady — the histogram did not count it either.
    static func steadyRows(_ x: [Double], _ px: [Int], _ change: (x: [Double], pixels: [Int]), below: Double, d: Int) -> ([Double], [Int]) {
        var steady = Set<Int>(minimumCapacity: change.pixels.count)
        for (p, g) in zip(change.pixels, change.x) where g <= below { steady.insert(p) }
        var rows: [Double] = [], pixels: [Int] = []
        for (i, p) in px.enumerated() where steady.contains(p) { rows += x[(i * d)..<((i + 1) * d)]; pixels.append(p) }
        return (rows, pixels)
    }

    /// The parameters after the last merged pass, for the next pass and for resuming: the sample's k-means (the
    /// start, and the model of --method kmeans) and, for a GMM, the mixture after the EM iterations so far.
    struct EMState: Codable {
        var rows: Int
        var centroids: [Double]
        var weights: [Double]?, means: [Double]?, covariances: [Double]?
        var reg: Double
        var logLikelihood: [Double] = []
        var converged = false
        var notes: [String] = []

        init(rows: Int, centroids: [Double], reg: Double) { self.rows = rows; self.centroids = centroids; self.reg = reg }

        mutating func set(_ g: GaussianMixture) { weights = g.weights; means = g.means; covariances = g.covariances }

        func model(d: Int) throws -> GaussianMixture? {
            guard let weights, let means, let covariances else { return nil }
            return try GaussianMixture(weights: weights, means: means, covariances: covariances, d: d, reg: reg)
        }
    }

    /// The M-step; a singular covariance raises `reg` tenfold (noted) and retries.
    private func maximize(_ s: GMMStatistics, reg: inout Double, notes: inout [String]) throws -> GaussianMixture {
        while true {
            do { return try GaussianMixture.maximization(s, reg: reg, diagonal: options.covariance == .diag) }
            catch AnalysisError.singularCovariance(let c, _) where reg < 1 {
                notes.append("covariance of component \(c) singular with reg_covar \(reg); raised to \(reg * 10)")
                reg *= 10
            }
        }
    }

    private func transpose(_ t: [[Int]]) -> [[Int]] {
        guard let cols = t.first?.count else { return [] }
        return (0..<cols).map { j in t.map { $0[j] } }
    }
}
