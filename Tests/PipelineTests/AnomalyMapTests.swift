import Foundation
import XCTest
import NeuralNet
import Phantom
import Run
@testable import Pipeline
import TestSupport
import VolumeStore

/// `predict --outputs anomaly` end to end on the anomaly fixture (`brainmap phantom --anomaly`), and the ROC AUC
/// against scikit-learn.
final class AnomalyMapTests: XCTestCase {
    /// Statistics of a network's latents on one phantom (no anomaly); a second phantom (another seed) with a disc of
    /// the egg-crate texture no class has: the anomaly map separates the disc from normal tissue (AUC ≥ 0.9). The
    /// network is PyTorch-initialised, untrained (seconds, not the minutes a trained model costs; tools/bench/
    /// augment_bench.sh measures trained models at full size). Also: unpredicted pixels are NaN, labels unchanged, a
    /// model without statistics is refused with what to do.
    func testAnomalyMapSeparatesTheAnomalousDisc() async throws {
        let dir = PythonReference.tempDir("anomaly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shape = [1, 300, 1200]
        try await PhantomWriter.write(to: dir + "/normal.zarr", shape: shape, seed: 5, pyramidLevels: 1)
        let disc = PhantomAnomaly(y: 150, x: 600, radius: 70)
        try await PhantomWriter.write(to: dir + "/odd.zarr", shape: shape, seed: 6, pyramidLevels: 1, anomaly: disc)

        let net = NetworkShape.paper(.valid134)
        let parameters = net.initialParameters(seed: 3)
        let model = dir + "/m.safetensors"
        try Safetensors.save(Dictionary(uniqueKeysWithValues: zip(net.parameterShapes.map(\.0), parameters)), path: model)
        let vol = try await VolumeSource.open(dir + "/normal.zarr/raw"), ann = try await VolumeSource.open(dir + "/normal.zarr/areas")
        let patches = try await PatchSampler(volume: vol, annotations: ann, map: .phantom, window: 134)
            .sample(slices: [0], rule: .centre, perClass: 60, seed: 1, flag: "test")
        let stats = try TrainJob.latentStatistics(parameters: parameters, shape: net, patches: patches, threads: 2, epoch: 0)

        var o = PredictOptions(source: dir + "/odd.zarr/raw", model: model, out: dir + "/run.zarr")
        o.stride = 4; o.outputs = [.labels, .anomaly]; o.threads = 2
        do { _ = try await PredictJob(options: o, context: SourceOptions()).run(); XCTFail("a model without statistics was accepted") }
        catch { XCTAssertTrue("\(error)".contains("latent statistics") && "\(error)".contains("train"), "\(error)") }
        let side: [String: Any] = ["latent_statistics": try JSONSerialization.jsonObject(with: JSONEncoder().encode(stats))]
        try JSONSerialization.data(withJSONObject: side).write(to: URL(fileURLWithPath: dir + "/m.json"))
        o.out = dir + "/run2.zarr"
        _ = try await PredictJob(options: o, context: SourceOptions()).run()

        let e = try await AnomalyEvaluation.evaluate(run: o.out, truth: dir + "/odd.zarr/anomaly", annotations: dir + "/odd.zarr/areas",
                                                     slices: nil, map: .phantom, context: SourceOptions())
        print("anomaly fixture: \(e.line)")
        XCTAssertGreaterThan(e.positives, 500)
        XCTAssertGreaterThanOrEqual(e.auc, 0.9, e.line)

        // The run's anomaly and labels arrays: NaN exactly where the label is 0; AUC equals scikit-learn's on the
        // same pixels.
        let run = try Run.open(o.out)
        let a = try await VolumeSource.open(try run.arrayPath("anomaly")), l = try await VolumeSource.open(try run.arrayPath("labels"))
        let av = try await a.read(a.fullBox).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let lv = try await l.read(l.fullBox)
        XCTAssertEqual(av.indices.filter { av[$0].isNaN }, lv.indices.filter { lv[$0] == 0 })
        let truth = try await VolumeSource.open(dir + "/odd.zarr/anomaly").read(Box([0..<1, 0..<300, 0..<1200]))
        let areas = try await VolumeSource.open(dir + "/odd.zarr/areas").read(Box([0..<1, 0..<300, 0..<1200]))
        var scores: [Float] = [], positive: [Bool] = []
        for i in av.indices where !av[i].isNaN {
            let y = 4 * (i / a.shape[2]), x = 4 * (i % a.shape[2])
            guard areas[y * 1200 + x] != 0 else { continue }
            scores.append(av[i]); positive.append(truth[y * 1200 + x] != 0)
        }
        XCTAssertEqual(AnomalyEvaluation.rocAUC(scores: scores, positive: positive), e.auc, accuracy: 1e-12)
        let file = dir + "/auc.json"
        try JSONSerialization.data(withJSONObject: ["scores": scores.map(Double.init), "positive": positive]).write(to: URL(fileURLWithPath: file))
        let ref = try JSONSerialization.jsonObject(with: Data(try PythonReference.run("tools/reference/sklearn_metrics.py", [file]).utf8)) as! [String: Double]
        XCTAssertEqual(e.auc, ref["roc_auc"]!, accuracy: 1e-9)
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
