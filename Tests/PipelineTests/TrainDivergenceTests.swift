import Foundation
import XCTest
import NeuralNet
@testable import Pipeline
import TestSupport
import VolumeStore

/// Issue 17, case 2 (training side): a run whose loss diverges on purpose (Adam at lr 1e6) stops with the epoch,
/// batch, learning rate and advice, and writes no model, sidecar or state; a model with NaN weights is refused by
/// predict naming the tensor. Flags of train name themselves when refused.
final class TrainDivergenceTests: XCTestCase {
    func testDivergingRunStopsAndWritesNoNonFiniteWeights() async throws {
        let dir = PythonReference.tempDir("train-diverge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try await TrainTests.phantom(dir, slices: 2)
        var o = TrainOptions(volume: g + "/raw", annotations: g + "/areas", trainSlices: [0], valSlices: [1], out: dir + "/m.safetensors")
        o.perClass = 6; o.valPerClass = 4; o.batch = 8; o.epochs = 2; o.seed = 9; o.lr = 1e6
        do {
            _ = try await TrainJob(options: o, context: SourceOptions()).run()
            XCTFail("a run at lr 1e6 must diverge")
        } catch let e as TrainDiverged {
            XCTAssertEqual(e.epoch, 1)
            let m = "\(e)"
            XCTAssertTrue(m.contains("training diverged at epoch 1, batch ") && m.contains("--lr 1000000.0")
                          && m.contains("not finite") && m.contains("--lr 100000.0") && m.contains("--restart")
                          && m.contains("no model was written"), m)
        }
        for f in ["m.safetensors", "m.json", "m.safetensors.state"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) was written by a diverged run")
        }
        // A model with NaN weights (as the diverged run used to write) is refused by predict, naming the tensor.
        var p = AreaClassifier.randomParameters(seed: 1)
        p["conv1.weight"] = Tensor(shape: p["conv1.weight"]!.shape, data: [Float](repeating: .nan, count: p["conv1.weight"]!.data.count))
        try Safetensors.save(p, path: dir + "/nan.safetensors")
        let r = try BrainmapCLI.run(["predict", "--volume", g + "/raw", "--model", dir + "/nan.safetensors", "--slices", "0",
                                     "--out", dir + "/run.zarr", "--quiet"], logDir: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("'conv1.weight' holds 2352 non-finite values"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run.zarr/labels"))
    }

    /// Zero or negative numbers name their own flag and the accepted range (they shared one message naming six).
    func testTrainFlagsNameThemselves() throws {
        let dir = PythonReference.tempDir("train-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["train", "--volume", dir + "/v.zarr", "--annotations", dir + "/a.zarr", "--train-slices", "0",
                    "--val-slices", "1", "--out", dir + "/m.safetensors"]
        for (flag, value, needle) in [("--per-class", "0", "--per-class 0 is below the accepted minimum 1"),
                                      ("--batch", "-3", "--batch -3 is below the accepted minimum 1"),
                                      ("--epochs", "0", "--epochs 0 is below the accepted minimum 1"),
                                      ("--lr", "0", "--lr 0.0 must be a finite number above 0"),
                                      ("--lr", "-1e-3", "--lr -0.001 must be a finite number above 0"),
                                      ("--lr", "nan", "--lr nan must be a finite number above 0")] {
            let r = try BrainmapCLI.run(base + [flag, value], logDir: dir)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(needle), "\(flag) \(value): \(r.stderr)")
        }
    }
}
