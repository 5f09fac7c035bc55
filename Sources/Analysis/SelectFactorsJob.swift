import NeuralNet
import Foundation
import Pipeline
import VolumeStore

public struct SelectFactorsOptions: Sendable {
    public var run: String
    public var rois: String
    public var lambda = 0.5
    public var on = "nmf"
    public var slices: [Int]?
    /// Picks (default: as many as ROIs or factors, whichever is fewer).
    public var top: Int?
    public var cacheBytes = 64 << 20
    public init(run: String, rois: String) { self.run = run; self.rois = rois }
}

public struct FactorSelection: Sendable {
    public struct Pick: Sendable { public var factor: Int, roi: Int64, coverage: Double, leakage: Double, score: Double }
    public var roiIds: [Int64] = []
    /// distribution[f][r]: factor f's positive coefficients summed over ROI r, normalised over ROIs.
    public var distribution: [[Double]] = []
    public var picks: [Pick] = []
    /// Per ROI: the covariance (64×64) of unit-normalised latents, and the pixel count.
    public var covariances: [[Double]] = []
    public var counts: [Int] = []
    public var resultPath = ""

    /// Greedy selection (the paper's): score(f, r) = coverage − λ·leakage, coverage = D[f][r], leakage = Σ_{r'≠r} D[f][r']
    /// over the ROIs still in the table; after a pick its factor's row and its ROI's column leave the table.
    public static func greedy(_ dist: [[Double]], lambda: Double, picks: Int) -> [(factor: Int, roi: Int, coverage: Double, leakage: Double, score: Double)] {
        var rows = Set(dist.indices), cols = Set(dist.first?.indices ?? 0..<0)
        var out: [(Int, Int, Double, Double, Double)] = []
        while out.count < picks, !rows.isEmpty, !cols.isEmpty {
            var best: (Int, Int, Double, Double, Double)?
            for f in rows.sorted() {
                let total = cols.reduce(0.0) { $0 + dist[f][$1] }
                for r in cols.sorted() {
                    let cov = dist[f][r], leak = total - cov, score = cov - lambda * leak
                    if best == nil || score > best!.4 { best = (f, r, cov, leak, score) }
                }
            }
            out.append(best!)
            rows.remove(best!.0); cols.remove(best!.1)
        }
        return out
    }
}

/// `brainmap select-factors`: per-ROI distributions of a factorisation's coefficients, the greedy predictive-factor
/// selection, and the class-wise covariance of unit-normalised latents — one streamed pass.
public enum SelectFactorsJob {
    public static func run(_ options: SelectFactorsOptions, progress: (Int, Int) -> Void = { _, _ in }) async throws -> FactorSelection {
        var o = options
        o.rois = Run.canonicalSource(o.rois)   // recorded in one spelling, however a caller typed it
        var ctx = SourceOptions(cacheBytes: o.cacheBytes)
        ctx.cache = ChunkCache(capacity: o.cacheBytes)
        let run = try await RunArrays(root: o.run, context: ctx)
        let coef = try await run.channels(o.on), features = try await run.channels("features")
        let inputs = try run.inputs(slices: o.slices, on: o.on, sources: [o.rois])
        let rois = try await run.regions(o.rois)
        let k = coef.shape[0], d = features.shape[0]
        let zs = o.slices ?? Array(0..<run.depth)
        var roiIndex: [Int64: Int] = [:]
        var sums: [[Double]] = Array(repeating: [], count: k)
        var moments: [Moments] = []
        let blocks = run.blocks(zs)
        for (i, b) in blocks.enumerated() {
            progress(i + 1, blocks.count)
            guard let l = try await run.labels(b) else { continue }
            let ids = try await run.regionIds(rois, b)
            // The factorisation's pixels (all predicted ones, or those of its --within/--mask) inside an ROI; the
            // features at exactly those pixels.
            let (c, px) = try await run.rows(coef, b, mask: zip(l, ids).map { $0 != 0 && $1 != 0 })
            var mask = [Bool](repeating: false, count: l.count)
            for p in px { mask[p] = true }
            let (f, fpx) = try await run.rows(features, b, mask: mask)
            precondition(px == fpx, "features are read at the factorisation's pixels")
            var unitRows: [Int: [Double]] = [:]
            for (j, p) in px.enumerated() {
                let r = roiIndex[ids[p]] ?? {
                    let v = roiIndex.count; roiIndex[ids[p]] = v
                    for t in 0..<k { sums[t].append(0) }
                    moments.append(Moments(d: d))
                    return v
                }()
                for t in 0..<k { sums[t][r] += max(0, c[j * k + t]) }
                var row = Array(f[(j * d)..<((j + 1) * d)])
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { row = row.map { $0 / norm } }
                unitRows[r, default: []] += row
            }
            for (r, rows) in unitRows { rows.withUnsafeBufferPointer { moments[r].add($0.baseAddress!, rows: rows.count / d) } }
        }
        guard !roiIndex.isEmpty else { throw AnalysisError.input("no predicted pixel lies in a ROI of \(o.rois)") }
        // Order ROIs by id.
        let order = roiIndex.sorted { $0.key < $1.key }
        var sel = FactorSelection()
        sel.roiIds = order.map(\.key)
        sel.distribution = sums.map { row in
            let total = row.reduce(0, +)
            return order.map { total > 0 ? row[$0.value] / total : 0 }
        }
        let n = o.top ?? min(k, order.count)
        sel.picks = FactorSelection.greedy(sel.distribution, lambda: o.lambda, picks: n).map {
            .init(factor: $0.factor, roi: sel.roiIds[$0.roi], coverage: $0.coverage, leakage: $0.leakage, score: $0.score)
        }
        sel.covariances = order.map { moments[$0.value].covariance }
        sel.counts = order.map { Int(moments[$0.value].count) }
        sel.resultPath = run.analysisDirectory + "/select-factors.json"
        let session = try run.run.begin(step: "select-factors", command: "select-factors",
                                        parameters: Parameters([("on", o.on), ("rois", o.rois), ("lambda", "\(o.lambda)"), ("top", o.top.map(String.init) ?? "-"),
                                                                ("slices", o.slices.map { $0.map(String.init).joined(separator: ",") } ?? "all")]),
                                        inputs: inputs, outputs: [])
        try write(["on": o.on, "rois": o.rois, "lambda": o.lambda, "roi_ids": sel.roiIds, "pixels_per_roi": sel.counts,
                   "distribution_factor_over_rois": sel.distribution,
                   "picks": sel.picks.map { ["factor": $0.factor, "roi": $0.roi, "coverage": $0.coverage, "leakage": $0.leakage, "score": $0.score] },
                   "rule": "score = coverage - lambda * leakage over the remaining ROIs; a pick removes its factor and its ROI",
                   "unit_latent_covariance_per_roi": sel.covariances], to: session.statePath("result.json"))
        try session.finish(arrays: [], results: [session.statePath("result.json"): sel.resultPath])
        return sel
    }
}
