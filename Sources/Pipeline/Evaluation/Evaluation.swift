import Foundation
import NeuralNet
import VolumeStore

/// Accuracy, per-class precision/recall/F1 and the confusion matrix of a run's label map against an annotation,
/// over every annotated pixel that was predicted; streamed chunk by chunk of the labels array (memory: one chunk and
/// its annotation region).
public struct Evaluation: Sendable {
    public static let classes = AreaClassifier.classes
    /// confusion[true class][predicted class], pixel counts.
    public var confusion = [[Int]](repeating: [Int](repeating: 0, count: 6), count: 6)
    /// Annotated pixels (per true class) that the run did not predict (label 0: outside its tissue mask, or a chunk
    /// not written).
    public var notPredicted = [Int](repeating: 0, count: 6)
    public var array = "labels"
    public var annotations = ""
    public var slices: [Int] = []
    /// Every slice of the run was asked for (no --slices).
    public var allSlices = false
    public var stride = 1

    public var total: Int { confusion.joined().reduce(0, +) }
    public var correct: Int { (0..<6).reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : 0 }
    public func support(_ c: Int) -> Int { confusion[c].reduce(0, +) }
    public func predicted(_ c: Int) -> Int { (0..<6).reduce(0) { $0 + confusion[$1][c] } }
    /// scikit-learn's conventions: a ratio with a zero denominator is 0.
    public func precision(_ c: Int) -> Double { predicted(c) > 0 ? Double(confusion[c][c]) / Double(predicted(c)) : 0 }
    public func recall(_ c: Int) -> Double { support(c) > 0 ? Double(confusion[c][c]) / Double(support(c)) : 0 }
    public func f1(_ c: Int) -> Double {
        let d = support(c) + predicted(c)
        return d > 0 ? 2 * Double(confusion[c][c]) / Double(d) : 0
    }
    /// Unweighted mean F1 over classes present in the annotation or the predictions (sklearn's macro average over labels seen).
    public var macroF1: Double {
        let seen = (0..<6).filter { support($0) + predicted($0) > 0 }
        return seen.isEmpty ? 0 : seen.map(f1).reduce(0, +) / Double(seen.count)
    }

    /// Adds one region: `labels` are run labels (0 = not predicted, 1…6 = class + 1), `truth` class indices (−1 = none).
    mutating func add(labels: [UInt8], truth: [Int8]) {
        for (l, t) in zip(labels, truth) where t >= 0 {
            if l == 0 || l > 6 { notPredicted[Int(t)] += 1 } else { confusion[Int(t)][Int(l) - 1] += 1 }
        }
    }

    public var json: [String: Any] {
        let perClass: [String: Any] = Dictionary(uniqueKeysWithValues: (0..<6).map { c in
            (Self.classes[c], ["precision": precision(c), "recall": recall(c), "f1": f1(c), "support": support(c),
                               "not_predicted": notPredicted[c]] as [String: Any])
        })
        let normalised = confusion.map { row -> [Double] in
            let n = row.reduce(0, +)
            return row.map { n > 0 ? Double($0) / Double(n) : 0 }
        }
        return ["array": array, "slices": slices, "stride": stride, "classes": Self.classes, "pixels": total,
                "accuracy": accuracy, "macro_f1": macroF1, "per_class": perClass,
                "confusion": confusion, "confusion_normalized": normalised,
                "confusion_axes": "rows: annotated class, columns: predicted class",
                "not_predicted": notPredicted.reduce(0, +)]
    }

    /// The table `brainmap evaluate` prints.
    public var table: String {
        var s = String(format: "accuracy %.4f over %d annotated, predicted pixels (macro F1 %.4f)", accuracy, total, macroF1)
        let np = notPredicted.reduce(0, +)
        if np > 0 { s += "; \(np) annotated pixels not predicted" }
        s += "\n\nclass   precision  recall     F1      support\n"
        for c in 0..<6 {
            s += Self.classes[c].padding(toLength: 6, withPad: " ", startingAt: 0)
                + String(format: "  %9.4f  %6.4f  %6.4f  %9d\n", precision(c), recall(c), f1(c), support(c))
        }
        s += "\nconfusion (rows: annotated, columns: predicted; row-normalised)\n      "
        s += Self.classes.map { $0.padding(toLength: 7, withPad: " ", startingAt: 0) }.joined() + "\n"
        for c in 0..<6 {
            let n = max(1, support(c))
            s += Self.classes[c].padding(toLength: 6, withPad: " ", startingAt: 0)
                + confusion[c].map { String(format: "%6.3f ", Double($0) / Double(n)) }.joined() + "\n"
        }
        return s
    }
}

public enum Evaluator {
    /// Writes an evaluation as RUN/evaluation-ARRAY.json (next to run.json) and records it in the run's manifest
    /// (step `evaluate-ARRAY`: the annotations, the slices, and the version of the array it scored); returns the path.
    @discardableResult
    public static func save(_ e: Evaluation, run: String) throws -> String {
        try record(e.json, array: e.array, sources: [("annotations", e.annotations)], slices: e.slices, allSlices: e.allSlices, run: run)
    }

    /// Writes RUN/evaluation-ARRAY.json as the step evaluate-ARRAY, whose inputs are the array's producer and the
    /// volumes it was scored against (`sources`: flag name → path, recorded as absolute paths).
    static func record(_ json: [String: Any], array: String, sources: [(String, String)], slices: [Int], allSlices: Bool, run: String) throws -> String {
        let r = try Run.open(run)
        let input = ["labels", "anomaly"].contains(array) ? Run.predictInput(slices: allSlices ? nil : slices) : Run.stepInput(r.manifest.arrays[array]?.step ?? array)
        let canonical = sources.map { ($0.0, Run.canonicalSource($0.1)) }
        var inputs = [input: r.version(of: input)]
        for (_, s) in canonical { inputs[Run.sourceInput(s)] = r.version(of: Run.sourceInput(s)) }
        let session = try r.begin(step: "evaluate-\(array)", command: "evaluate",
                                  parameters: Parameters(canonical + [("slices", slices.map(String.init).joined(separator: ","))]),
                                  inputs: inputs, outputs: [])
        let path = run + "/evaluation-\(array).json"
        try DurableFile.write(path, [UInt8](try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])))
        try session.finish(arrays: [])
        return path
    }

    /// Evaluates `RUN/array` against `annotations` (same z, y, x extent as the run's source) on `slices`
    /// (default: every slice of the run). A run at stride S is compared at the annotated pixels (S·i, S·j).
    public static func evaluate(run: String, array: String = "labels", annotations: String, slices: [Int]?, map: LabelMap,
                                context: SourceOptions) async throws -> Evaluation {
        let r = try Run.open(run)
        let stride = r.stride
        let labels: ZarrArray
        do { labels = try await VolumeSource.open(try r.arrayPath(array), options: context) }
        catch let e as RunError { throw PipelineError.input("--array \(array): \(e)") }   // names the flag
        catch { throw PipelineError.input("\(run) has no readable '\(array)' array (\(error)); was it predicted with --outputs including it?") }
        guard labels.metadata.dtype.size == 1, labels.shape.count == 3 else {
            throw PipelineError.input("\(run)/\(array) is \(labels.metadata.dtype.v3Name) \(labels.shape), not a (z, y, x) uint8 label map")
        }
        let truth = try await VolumeSource.open(annotations, options: context)
        let H = truth.shape.count == 3 ? truth.shape[1] : 0, W = truth.shape.count == 3 ? truth.shape[2] : 0
        guard truth.shape.count == 3, truth.shape[0] == labels.shape[0],
              (H + stride - 1) / stride == labels.shape[1], (W + stride - 1) / stride == labels.shape[2] else {
            throw PipelineError.input("annotations \(annotations) have shape \(truth.shape), which does not match the run's \(labels.shape) at stride \(stride); evaluate against the annotations of the volume the run predicted")
        }
        let zs = slices ?? Array(0..<labels.shape[0])
        if let bad = zs.first(where: { $0 < 0 || $0 >= labels.shape[0] }) {
            throw PipelineError.input("--slices: slice \(bad) is outside the run (z = 0..<\(labels.shape[0]))")
        }
        var e = Evaluation()
        e.array = array; e.annotations = annotations; e.slices = zs; e.allSlices = slices == nil; e.stride = stride
        let cy = labels.metadata.chunks[1], cx = labels.metadata.chunks[2], cz = labels.metadata.chunks[0]
        for z in zs {
            for by in 0..<((labels.shape[1] + cy - 1) / cy) {
                for bx in 0..<((labels.shape[2] + cx - 1) / cx) {
                    let rows = (by * cy)..<min(labels.shape[1], (by + 1) * cy), cols = (bx * cx)..<min(labels.shape[2], (bx + 1) * cx)
                    // The annotation under this chunk (every S-th pixel is compared).
                    let ty = (rows.lowerBound * stride)..<min(H, (rows.upperBound - 1) * stride + 1)
                    let tx = (cols.lowerBound * stride)..<min(W, (cols.upperBound - 1) * stride + 1)
                    let tc = try map.classes(of: try await truth.read(Box([z..<(z + 1), ty, tx])), dtype: truth.metadata.dtype, source: annotations)
                    var t = [Int8](repeating: -1, count: rows.count * cols.count)
                    for i in 0..<rows.count { for j in 0..<cols.count { t[i * cols.count + j] = tc[(i * stride) * tx.count + j * stride] } }
                    guard t.contains(where: { $0 >= 0 }) else { continue }
                    // A chunk never written was not predicted: count its annotated pixels as such.
                    var l = [UInt8](repeating: 0, count: t.count)
                    if let chunk = try await labels.readChunkIfPresent([z / cz, by, bx]) {
                        let zo = z % cz
                        for i in 0..<rows.count { for j in 0..<cols.count { l[i * cols.count + j] = chunk[(zo * cy + i) * cx + j] } }
                    }
                    e.add(labels: l, truth: t)
                }
            }
        }
        return e
    }
}
