import Foundation
import XCTest
import NeuralNet
import Phantom
import Run
@testable import Pipeline
import TestSupport
import VolumeStore

/// `predict --outputs anomaly` end to end on an anomaly phantom (`brainmap phantom --anomaly`), and the ROC AUC
/// against scikit-learn.
final class AnomalyMapTests: XCTestCase {
    /// The anomaly output end to end on the committed fixture commands' kind of data: latent statistics of a
    /// network on one phantom, `predict --outputs labels,anomaly` on another seed's phantom with an anomaly disc,
    /// `evaluate --anomaly-truth`. Checks: a model without statistics is refused saying what to do; the map is NaN
    /// exactly where no label was predicted and equals the statistics' distances of the run's own features; the
    /// evaluator's AUC is the rank AUC of exactly the predicted tissue pixels. The network is PyTorch-initialised and
    /// untrained (a trained one costs minutes): an untrained net does NOT separate the disc (AUC ≈ 0.5 here), so the
    /// ≥ 0.9 target is measured with trained models by tools/bench/augment_bench.sh (README, Measured).
    func testAnomalyOutputEndToEnd() async throws {
        let dir = PythonReference.tempDir("anomaly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shape = [1, 200, 800], H = 200, W = 800
        try await PhantomWriter.write(to: dir + "/normal.zarr", shape: shape, seed: 5, pyramidLevels: 1)
        try await PhantomWriter.write(to: dir + "/odd.zarr", shape: shape, seed: 6, pyramidLevels: 1,
                                      anomaly: PhantomAnomaly(y: 100, x: 400, radius: 50))

        let net = NetworkShape.paper(.valid134)
        let parameters = net.initialParameters(seed: 3)
        let model = dir + "/m.safetensors"
        try Safetensors.save(Dictionary(uniqueKeysWithValues: zip(net.parameterShapes.map(\.0), parameters)), path: model)
        let vol = try await VolumeSource.open(dir + "/normal.zarr/raw"), ann = try await VolumeSource.open(dir + "/normal.zarr/areas")
        let patches = try await PatchSampler(volume: vol, annotations: ann, map: .phantom, window: 134)
            .sample(slices: [0], rule: .centre, perClass: 20, seed: 1, flag: "test")
        let stats = try TrainJob.latentStatistics(parameters: parameters, shape: net, patches: patches, threads: 2, epoch: 0)

        var o = PredictOptions(source: dir + "/odd.zarr/raw", model: model, out: dir + "/run.zarr")
        o.stride = 4; o.outputs = [.labels, .features, .anomaly]; o.threads = 2
        do { _ = try await PredictJob(options: o, context: SourceOptions()).run(); XCTFail("a model without statistics was accepted") }
        catch { XCTAssertTrue("\(error)".contains("m.json") && "\(error)".contains("brainmap train"), "\(error)") }
        // Statistics recorded for other weights (a sidecar of another model beside these) are refused; then the right ones.
        var side: [String: Any] = ["latent_statistics": try JSONSerialization.jsonObject(with: JSONEncoder().encode(stats)), "weights_sha256": String(repeating: "0", count: 64)]
        try JSONSerialization.data(withJSONObject: side).write(to: URL(fileURLWithPath: dir + "/m.json"))
        do { _ = try await PredictJob(options: o, context: SourceOptions()).run(); XCTFail("statistics of other weights were accepted") }
        catch { XCTAssertTrue("\(error)".contains("computed with weights of SHA-256 000000000000…") && "\(error)".contains("another model"), "\(error)") }
        side["weights_sha256"] = try SHA256.file(model)
        try JSONSerialization.data(withJSONObject: side).write(to: URL(fileURLWithPath: dir + "/m.json"))
        o.out = dir + "/run2.zarr"
        _ = try await PredictJob(options: o, context: SourceOptions()).run()

        let run = try Run.open(o.out)
        let a = try await VolumeSource.open(try run.arrayPath("anomaly")), l = try await VolumeSource.open(try run.arrayPath("labels"))
        let f = try await VolumeSource.open(try run.arrayPath("features"))
        let av = try await a.read(a.fullBox).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let lv = try await l.read(l.fullBox)
        var fv = try await f.read(f.fullBox).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(av.indices.filter { av[$0].isNaN }, lv.indices.filter { lv[$0] == 0 })
        XCTAssertGreaterThan(lv.filter { $0 != 0 }.count, 1000)
        var again = [Float](repeating: 0, count: av.count)
        fv.withUnsafeMutableBufferPointer { fb in lv.withUnsafeBufferPointer { lb in again.withUnsafeMutableBufferPointer { ob in
            stats.distances(latents: fb.baseAddress!, labels: lb.baseAddress!, count: av.count, into: ob.baseAddress!)
        } } }
        let worst = zip(again, av).filter { !$0.1.isNaN }.map { abs($0.0 - $0.1) / max(1, $0.1) }.max() ?? 1
        XCTAssertLessThan(worst, 1e-5, "the run's map = the statistics' distances of its own features")

        let e = try await AnomalyEvaluation.evaluate(run: o.out, truth: dir + "/odd.zarr/anomaly", annotations: dir + "/odd.zarr/areas",
                                                     slices: nil, map: .phantom, context: SourceOptions())
        print("anomaly fixture, untrained net: \(e.line)")
        let truth = try await VolumeSource.open(dir + "/odd.zarr/anomaly").read(Box([0..<1, 0..<H, 0..<W]))
        let areas = try await VolumeSource.open(dir + "/odd.zarr/areas").read(Box([0..<1, 0..<H, 0..<W]))
        var scores: [Float] = [], positive: [Bool] = []
        for i in av.indices where !av[i].isNaN {
            let y = 4 * (i / a.shape[2]), x = 4 * (i % a.shape[2])
            guard areas[y * W + x] != 0 else { continue }
            scores.append(av[i]); positive.append(truth[y * W + x] != 0)
        }
        XCTAssertEqual(e.positives, positive.filter { $0 }.count)
        XCTAssertGreaterThan(e.positives, 200)
        XCTAssertEqual(e.negatives, positive.count - e.positives)
        XCTAssertEqual(AnomalyEvaluation.rocAUC(scores: scores, positive: positive), e.auc, accuracy: 1e-12)
        XCTAssertEqual(try AnomalyEvaluation.save(e, run: o.out), o.out + "/evaluation-anomaly.json")
        // The record names both volumes it was scored against, and the slices that had predicted tissue.
        let step = try XCTUnwrap(try Run.open(o.out).manifest.steps["evaluate-anomaly"])
        XCTAssertEqual(step.parameters["truth"], Run.canonicalSource(dir + "/odd.zarr/anomaly"))
        XCTAssertEqual(step.parameters["annotations"], Run.canonicalSource(dir + "/odd.zarr/areas"))
        XCTAssertTrue(step.inputs.keys.contains { $0.hasSuffix("odd.zarr/areas") }, "\(step.inputs)")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: o.out + "/evaluation-anomaly.json"))) as! [String: Any]
        XCTAssertEqual(doc["slices"] as? [Int], e.evaluatedSlices)
        XCTAssertFalse(e.evaluatedSlices.isEmpty)
    }

    /// Ties count one half, as scikit-learn's roc_auc_score.
    func testROCAUCWithTiesMatchesScikitLearn() throws {
        var r = SeededRandom(seed: 2)
        let scores = (0..<300).map { _ in Float(r.next(below: 12)) }, positive = (0..<300).map { _ in r.next(below: 3) == 0 }
        let file = PythonReference.tempDir("auc") + "/y.json"
        try JSONSerialization.data(withJSONObject: ["scores": scores.map(Double.init), "positive": positive]).write(to: URL(fileURLWithPath: file))
        let ref = try JSONSerialization.jsonObject(with: Data(try PythonReference.run("tools/reference/sklearn_metrics.py", [file]).utf8)) as! [String: Double]
        XCTAssertEqual(AnomalyEvaluation.rocAUC(scores: scores, positive: positive), ref["roc_auc"]!, accuracy: 1e-12)
    }
}
