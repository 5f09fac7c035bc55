import Foundation
import Run
import VolumeStore

/// How well a run's `anomaly` map separates known anomalous tissue from normal tissue: the ROC AUC (scikit-learn's
/// roc_auc_score: the probability that a random anomalous pixel scores higher than a random normal one, ties counting
/// one half). Pixels compared: those the run predicted (anomaly not NaN) whose annotation is a class (tissue);
/// positives are those where the truth mask is nonzero (the phantom's `anomaly` array). At stride S the pixels
/// (S·i, S·j). The scores of the slices asked for are held in memory (4 bytes per compared pixel).
public struct AnomalyEvaluation: Sendable {
    public var auc = 0.0
    public var positives = 0, negatives = 0
    /// Mean anomaly of each group.
    public var meanPositive = 0.0, meanNegative = 0.0
    public var truth = "", annotations = "", slices: [Int] = [], allSlices = false
    /// The slices asked for that had predicted tissue pixels (the ones the AUC is over).
    public var evaluatedSlices: [Int] = []

    /// Writes RUN/evaluation-anomaly.json (the step evaluate-anomaly); returns its path.
    public static func save(_ e: AnomalyEvaluation, run: String) throws -> String {
        var json = e.json
        json["truth"] = Run.canonicalSource(e.truth); json["annotations"] = Run.canonicalSource(e.annotations); json["slices"] = e.evaluatedSlices
        return try Evaluator.record(json, array: "anomaly", sources: [("truth", e.truth), ("annotations", e.annotations)], slices: e.slices,
                                    allSlices: e.allSlices, run: run)
    }

    public var json: [String: Any] {
        ["roc_auc": auc, "anomalous_pixels": positives, "normal_pixels": negatives,
         "mean_anomaly_anomalous": meanPositive, "mean_anomaly_normal": meanNegative]
    }

    public var line: String {
        String(format: "anomaly map: ROC AUC %.4f (%d anomalous, %d normal tissue pixels; mean distance %.2f vs %.2f)",
               auc, positives, negatives, meanPositive, meanNegative)
    }

    /// ROC AUC of `scores` for the `positive` ones, by ranks (average ranks for ties: the Mann–Whitney U statistic).
    public static func rocAUC(scores: [Float], positive: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumPositive = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1   // average 1-based rank of the tie group
            for k in i...j where positive[order[k]] { rankSumPositive += rank }
            i = j + 1
        }
        let p = Double(positive.filter { $0 }.count), n = Double(positive.count) - p
        guard p > 0, n > 0 else { return .nan }
        return (rankSumPositive - p * (p + 1) / 2) / (p * n)
    }

    /// Evaluates RUN/anomaly against the truth mask and the annotations (which say where tissue is) on `slices`.
    public static func evaluate(run: String, truth: String, annotations: String, slices: [Int]?, map: LabelMap,
                                context: SourceOptions) async throws -> AnomalyEvaluation {
        let r = try Run.open(run)
        let S = r.stride
        let scores: ZarrArray
        do { scores = try await VolumeSource.open(try r.arrayPath("anomaly"), options: context) }
        catch { throw PipelineError.input("\(run) has no readable 'anomaly' array (\(error)); predict with --outputs including anomaly") }
        let mask = try await VolumeSource.open(truth, options: context)
        let areas = try await VolumeSource.open(annotations, options: context)
        for (name, a) in [("--anomaly-truth \(truth)", mask), ("--annotations \(annotations)", areas)] {
            guard a.shape.count == 3, a.shape[0] == scores.shape[0], (a.shape[1] + S - 1) / S == scores.shape[1],
                  (a.shape[2] + S - 1) / S == scores.shape[2] else {
                throw PipelineError.input("\(name) has shape \(a.shape), which does not match the run's \(scores.shape) at stride \(S)")
            }
        }
        let zs = slices ?? Array(0..<scores.shape[0])
        if let bad = zs.first(where: { $0 < 0 || $0 >= scores.shape[0] }) {
            throw PipelineError.input("--slices: slice \(bad) is outside the run (z = 0..<\(scores.shape[0]))")
        }
        var values: [Float] = [], positive: [Bool] = [], evaluated: [Int] = []
        let H = scores.shape[1], W = scores.shape[2], band = scores.metadata.chunks[1]
        for z in zs {
            let before = values.count
            defer { if values.count > before { evaluated.append(z) } }
            for y0 in Swift.stride(from: 0, to: H, by: band) {
                let rows = y0..<min(H, y0 + band)
                let a = try await scores.read(Box([z..<(z + 1), rows, 0..<W]))
                let sy = (S * rows.lowerBound)..<(S * (rows.upperBound - 1) + 1), sx = 0..<(S * (W - 1) + 1)
                let m = try await mask.read(Box([z..<(z + 1), sy, sx]))
                let cls = try map.classes(of: try await areas.read(Box([z..<(z + 1), sy, sx])), dtype: areas.metadata.dtype, source: annotations)
                let isF16 = scores.metadata.dtype.size == 2
                a.withUnsafeBytes { raw in
                    for i in 0..<rows.count { for j in 0..<W {
                        let v = isF16 ? Float(raw.load(fromByteOffset: 2 * (i * W + j), as: Float16.self))
                                      : raw.load(fromByteOffset: 4 * (i * W + j), as: Float.self)
                        let t = (S * i) * sx.count + S * j
                        guard !v.isNaN, cls[t] >= 0 else { continue }
                        values.append(v); positive.append(m[t] != 0)
                    } }
                }
            }
        }
        var e = AnomalyEvaluation()
        e.truth = truth; e.annotations = annotations; e.slices = zs; e.allSlices = slices == nil; e.evaluatedSlices = evaluated
        e.positives = positive.filter { $0 }.count; e.negatives = positive.count - e.positives
        guard e.positives > 0, e.negatives > 0 else {
            throw PipelineError.input("the anomaly map has \(e.positives) anomalous and \(e.negatives) normal predicted tissue pixels on slices \(zs); both are needed for an ROC AUC")
        }
        e.auc = rocAUC(scores: values, positive: positive)
        e.meanPositive = zip(values, positive).filter { $0.1 }.reduce(0.0) { $0 + Double($1.0) } / Double(e.positives)
        e.meanNegative = zip(values, positive).filter { !$0.1 }.reduce(0.0) { $0 + Double($1.0) } / Double(e.negatives)
        return e
    }
}
