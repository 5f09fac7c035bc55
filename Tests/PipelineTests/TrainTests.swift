import Foundation
import XCTest
import NeuralNet
import Phantom
@testable import Pipeline
import TestSupport
import VolumeStore

/// Patch sampling, `train` (bad inputs, resume = uninterrupted, learning on the phantom) and `evaluate` against
/// scikit-learn.
final class TrainTests: XCTestCase {
    /// A (2, 70, 95) uint16 annotation of rectangles (ids 1..6, 9 unmapped, 0 unlabelled) and a random uint8 volume.
    static func annotated(_ dir: String) async throws -> (volume: ZarrArray, annotations: ZarrArray, ids: [UInt16]) {
        let shape = [2, 70, 95]
        var ids = [UInt16](repeating: 0, count: shape.reduce(1, *))
        let rects: [(z: Int, y: Range<Int>, x: Range<Int>, id: UInt16)] = [
            (0, 0..<40, 0..<50, 1), (0, 40..<70, 0..<50, 3), (0, 5..<60, 50..<95, 5), (0, 30..<45, 60..<80, 9),
            (1, 0..<70, 0..<30, 2), (1, 10..<21, 30..<41, 4), (1, 0..<70, 41..<95, 6), (1, 50..<60, 60..<70, 1),
        ]
        for r in rects { for y in r.y { for x in r.x { ids[(r.z * 70 + y) * 95 + x] = r.id } } }
        let ann = try await ZarrArray.create(store: FileChunkStore(root: dir + "/ann.zarr"), path: "",
                                             metadata: ArrayMetadata(shape: shape, chunks: [1, 32, 32], dtype: .uint16))
        try await ann.write(ann.fullBox, ids.withUnsafeBytes { Array($0) })
        let vol = try await ZarrArray.create(store: FileChunkStore(root: dir + "/vol.zarr"), path: "",
                                             metadata: ArrayMetadata(shape: shape, chunks: [1, 32, 32], dtype: .uint8))
        try await vol.write(vol.fullBox, (0..<ids.count).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) })
        return (vol, ann, ids)
    }

    /// Whole-window positions found tile by tile (tiles of 23 centres, so windows straddle tiles) equal a brute-force
    /// scan; every sample satisfies its rule and carries its window; short classes are drawn with replacement.
    func testSamplingRulesMatchBruteForce() async throws {
        let dir = PythonReference.tempDir("sampling")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (vol, ann, ids) = try await Self.annotated(dir)
        let raw = try await vol.read(vol.fullBox)
        var sampler = try PatchSampler(volume: vol, annotations: ann, map: .phantom, window: 10)
        sampler.tile = 23
        func cls(_ z: Int, _ y: Int, _ x: Int) -> Int { let v = Int(ids[(z * 70 + y) * 95 + x]); return (1...6).contains(v) ? v - 1 : -1 }
        var whole = [Int](repeating: 0, count: 6), centre = [Int](repeating: 0, count: 6)
        for z in 0..<2 { for y in 0..<70 { for x in 0..<95 {
            let c = cls(z, y, x)
            if c >= 0 { centre[c] += 1 }
            guard y - 5 >= 0, y + 5 <= 70, x - 5 >= 0, x + 5 <= 95, c >= 0 else { continue }
            var uniform = true
            for yy in (y - 5)..<(y + 5) { for xx in (x - 5)..<(x + 5) where cls(z, yy, xx) != c { uniform = false } }
            if uniform { whole[c] += 1 }
        } } }
        XCTAssertEqual(whole[3], 4, "class VP: an 11×11 square holds 2×2 windows of 10")

        let p = try await sampler.sample(slices: [0, 1], rule: .wholeWindow, perClass: 7, seed: 3, flag: "--train-slices")
        XCTAssertEqual(p.counts.map(\.available), whole)
        XCTAssertEqual(p.count, 42)
        for (i, pos) in p.positions.enumerated() {
            let c = p.labels[i]
            for yy in (pos.y - 5)..<(pos.y + 5) { for xx in (pos.x - 5)..<(pos.x + 5) { XCTAssertEqual(cls(pos.z, yy, xx), c) } }
            for yy in 0..<10 { for xx in 0..<10 {
                XCTAssertEqual(p.images[i * 100 + yy * 10 + xx], raw[(pos.z * 70 + pos.y - 5 + yy) * 95 + pos.x - 5 + xx])
            } }
        }
        XCTAssertTrue(p.counts[3].withReplacement, "VP has 4 positions < 7")
        XCTAssertFalse(p.counts[0].withReplacement)
        XCTAssertEqual(Set(zip(p.positions, p.labels).filter { $0.1 == 0 }.map(\.0)).count, 7, "without replacement: distinct")

        let v = try await sampler.sample(slices: [0, 1], rule: .centre, perClass: 5, seed: 3, flag: "--val-slices")
        XCTAssertEqual(v.counts.map(\.available), centre)
        for (i, pos) in v.positions.enumerated() { XCTAssertEqual(cls(pos.z, pos.y, pos.x), v.labels[i]) }
        // Same seed, same sample; another seed, another.
        let again = try await sampler.sample(slices: [0, 1], rule: .centre, perClass: 5, seed: 3, flag: "--val-slices")
        XCTAssertEqual(again.positions, v.positions)
        let other = try await sampler.sample(slices: [0, 1], rule: .centre, perClass: 5, seed: 4, flag: "--val-slices")
        XCTAssertNotEqual(other.positions, v.positions)
        // A window over the image's corner is zero outside.
        let corner = try await sampler.readWindows([.init(z: 0, y: 1, x: 2)])
        XCTAssertEqual(corner[0], 0)
        XCTAssertEqual(corner[4 * 10 + 3], raw[0 * 95 + 0])
        XCTAssertEqual(corner[9 * 10 + 9], raw[5 * 95 + 6])

        // A class nowhere whole: an error naming it and the slices.
        do {
            _ = try await sampler.sample(slices: [1], rule: .wholeWindow, perClass: 3, seed: 1, flag: "--train-slices")
            XCTFail("slice 1 has no STR window")
        } catch {
            XCTAssertTrue("\(error)".contains("class STR") && "\(error)".contains("slices 1"), "\(error)")
        }
    }

    func testBadInputsGiveClearErrors() async throws {
        let dir = PythonReference.tempDir("train-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await Self.annotated(dir)
        let other = try await ZarrArray.create(store: FileChunkStore(root: dir + "/small.zarr"), path: "",
                                               metadata: ArrayMetadata(shape: [2, 70, 94], chunks: [1, 32, 32], dtype: .uint8))
        try await other.write(other.fullBox, [UInt8](repeating: 1, count: 2 * 70 * 94))
        let floats = try await ZarrArray.create(store: FileChunkStore(root: dir + "/float.zarr"), path: "",
                                                metadata: ArrayMetadata(shape: [2, 70, 95], chunks: [1, 32, 32], dtype: DataType(kind: .float, size: 4)))
        _ = floats
        func expect(_ o: TrainOptions, _ needle: String, file: StaticString = #filePath, line: UInt = #line) async {
            do {
                _ = try await TrainJob(options: o, context: SourceOptions()).run()
                XCTFail("expected an error containing '\(needle)'", file: file, line: line)
            } catch { XCTAssertTrue("\(error)".contains(needle), "\(error)", file: file, line: line) }
        }
        func opts(_ ann: String = "/ann.zarr", train: [Int] = [0], val: [Int] = [1], out: String = "/m.safetensors") -> TrainOptions {
            var o = TrainOptions(volume: dir + "/vol.zarr", annotations: dir + ann, trainSlices: train, valSlices: val, out: dir + out)
            o.form = .valid134; o.perClass = 2; o.valPerClass = 2; o.epochs = 1
            return o
        }
        await expect(opts("/small.zarr"), "have shape [2, 70, 94] but the volume")
        await expect(opts(train: [0, 5]), "--train-slices: slice 5 is outside the volume (z = 0..<2)")
        await expect(opts(val: [0]), "also training slices")
        await expect(opts(out: "/no/such/dir/m.safetensors"), "is not a writable directory")
        await expect(opts("/float.zarr"), "annotations must be an integer label array")
        // The 70×95 fixture holds no whole 134-window at all.
        await expect(opts(), "no 134×134 window lies wholly inside it")
        XCTAssertThrowsError(try LabelMap.load(dir + "/nope.json"))
        FileManager.default.createFile(atPath: dir + "/map.json", contents: Data(#"{"1": "CTX", "2": "BRAIN"}"#.utf8))
        XCTAssertThrowsError(try LabelMap.load(dir + "/map.json")) { XCTAssertTrue("\($0)".contains("BRAIN")) }
        FileManager.default.createFile(atPath: dir + "/map.json", contents: Data(#"{"1": "CTX", "3": null, "7": "WM"}"#.utf8))
        XCTAssertEqual(try LabelMap.load(dir + "/map.json").classOf, [1: 0, 7: 4])
        XCTAssertEqual(LabelMap.prasad2020.classOf[3], nil, "TRN is dropped")
        XCTAssertEqual(LabelMap.prasad2020.classOf[8], 4, "corpus callosum → WM")
    }

    /// A phantom whose slices are full size (the internal capsule is ~270 px wide: whole 134-windows of WM exist).
    static func phantom(_ dir: String, slices: Int) async throws -> String {
        let g = dir + "/ph.zarr"
        try await PhantomWriter.write(to: g, shape: [slices, 1420, 5805], seed: 5, pyramidLevels: 1)
        return g
    }

    /// Two epochs, then the same command with --epochs 3, equals three epochs in one go, byte for byte; other
    /// parameters are refused naming the difference.
    func testResumeEqualsUninterruptedAndRefusesOtherParameters() async throws {
        let dir = PythonReference.tempDir("train-resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try await Self.phantom(dir, slices: 2)
        func opts(_ out: String, epochs: Int) -> TrainOptions {
            var o = TrainOptions(volume: g + "/raw", annotations: g + "/areas", trainSlices: [0], valSlices: [1], out: dir + "/" + out)
            o.perClass = 6; o.valPerClass = 4; o.batch = 8; o.epochs = epochs; o.seed = 9
            return o
        }
        let straight = try await TrainJob(options: opts("a.safetensors", epochs: 3), context: SourceOptions()).run()
        XCTAssertEqual(straight.history.count, 3)
        let first = try await TrainJob(options: opts("b.safetensors", epochs: 2), context: SourceOptions()).run()
        XCTAssertEqual(first.history.count, 2)
        let resumed = try await TrainJob(options: opts("b.safetensors", epochs: 3), context: SourceOptions()).run()
        XCTAssertEqual(resumed.resumedAfterEpoch, 2)
        XCTAssertEqual(resumed.history.map(\.valAccuracy), straight.history.map(\.valAccuracy))
        XCTAssertEqual(resumed.history.map(\.trainLoss), straight.history.map(\.trainLoss))
        XCTAssertEqual(try Safetensors.load(path: dir + "/a.safetensors.state"), try Safetensors.load(path: dir + "/b.safetensors.state"))
        XCTAssertEqual(try Safetensors.load(path: dir + "/a.safetensors"), try Safetensors.load(path: dir + "/b.safetensors"))
        // The sidecar records the run.
        let side = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/a.json"))) as! [String: Any]
        XCTAssertEqual((side["epochs"] as! [Any]).count, 3)
        XCTAssertEqual(side["form"] as? String, "valid134")
        XCTAssertEqual(side["best_epoch"] as? Int, straight.bestEpoch)
        // The weights load into the inference model.
        XCTAssertNoThrow(try AreaClassifier(contentsOf: dir + "/a.safetensors"))

        var changed = opts("b.safetensors", epochs: 4)
        changed.lr = 1e-3
        do { _ = try await TrainJob(options: changed, context: SourceOptions()).run(); XCTFail("other lr must be refused") }
        catch { XCTAssertTrue("\(error)".contains("lr: 0.0001 (saved) vs 0.001 (now)"), "\(error)") }
        // Dropping an option the state was trained with is a difference too (it was resumed silently).
        var balanced = opts("c.safetensors", epochs: 1)
        balanced.balance = true
        _ = try await TrainJob(options: balanced, context: SourceOptions()).run()
        do { _ = try await TrainJob(options: opts("c.safetensors", epochs: 2), context: SourceOptions()).run(); XCTFail("dropping --balance must be refused") }
        catch { XCTAssertTrue("\(error)".contains("balance: per-batch (saved) vs – (now)"), "\(error)") }
    }

    /// --lr-schedule cosine: PyTorch's CosineAnnealingLR per epoch (T_max = epochs, eta_min = 0; the values below are
    /// torch's for lr 1e-3 over 4 epochs); its first epoch trains as a constant rate does, the later ones do not; the
    /// sidecar records it; a state trained with it cannot grow its --epochs (the rates would change under it).
    func testCosineScheduleFollowsPyTorchAndFixesTheEpochs() async throws {
        let torch: [Float] = [1e-3, 8.535534e-4, 5e-4, 1.464466e-4]
        for (e, want) in torch.enumerated() {
            XCTAssertEqual(LearningRateSchedule.cosine.rate(base: 1e-3, epoch: e + 1, of: 4), want, accuracy: 1e-9)
            XCTAssertEqual(LearningRateSchedule.constant.rate(base: 1e-3, epoch: e + 1, of: 4), 1e-3)
        }
        let dir = PythonReference.tempDir("train-cosine")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try await Self.phantom(dir, slices: 2)
        func opts(_ out: String, epochs: Int, _ schedule: LearningRateSchedule) -> TrainOptions {
            var o = TrainOptions(volume: g + "/raw", annotations: g + "/areas", trainSlices: [0], valSlices: [1], out: dir + "/" + out)
            o.perClass = 6; o.valPerClass = 4; o.batch = 8; o.epochs = epochs; o.seed = 9; o.lr = 1e-3; o.lrSchedule = schedule
            return o
        }
        let constant = try await TrainJob(options: opts("c.safetensors", epochs: 2, .constant), context: SourceOptions()).run()
        let cosine = try await TrainJob(options: opts("k.safetensors", epochs: 2, .cosine), context: SourceOptions()).run()
        XCTAssertEqual(cosine.history[0].trainLoss, constant.history[0].trainLoss)
        XCTAssertNotEqual(cosine.history[1].trainLoss, constant.history[1].trainLoss)
        let side = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/k.json"))) as! [String: Any]
        XCTAssertEqual((side["parameters"] as? [String: Any])?["lr_schedule"] as? String, "cosine")
        let again = try await TrainJob(options: opts("k.safetensors", epochs: 2, .cosine), context: SourceOptions()).run()
        XCTAssertEqual(again.resumedAfterEpoch, 2)
        do { _ = try await TrainJob(options: opts("k.safetensors", epochs: 3, .cosine), context: SourceOptions()).run(); XCTFail("more epochs under cosine must be refused") }
        catch { XCTAssertTrue("\(error)".contains("epochs: 2 (saved) vs 3 (now)"), "\(error)") }
        do { _ = try await TrainJob(options: opts("k.safetensors", epochs: 2, .constant), context: SourceOptions()).run(); XCTFail("dropping the schedule must be refused") }
        catch { XCTAssertTrue("\(error)".contains("lr_schedule: cosine (saved) vs – (now)"), "\(error)") }
    }

    /// evaluate's numbers equal scikit-learn's (accuracy, precision/recall/F1 per class, confusion matrix) on a run
    /// at stride 2 with unpredicted pixels, an unmapped id, a class never predicted and a chunk never written.
    func testEvaluateMatchesScikitLearn() async throws {
        let dir = PythonReference.tempDir("evaluate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let H = 50, W = 70, S = 2, h = 25, w = 35
        var rng = SeededRandom(seed: 4)
        var truth = [UInt8](repeating: 0, count: 2 * H * W)
        for i in truth.indices { truth[i] = UInt8(rng.next(below: 8)) }          // 0 unlabelled, 7 unmapped
        var labels = [UInt8](repeating: 0, count: 2 * h * w)
        for i in labels.indices {
            let z = i / (h * w), y = i / w % h, x = i % w
            let t = truth[(z * H + y * S) * W + x * S]
            labels[i] = (1...6).contains(t) && rng.next(below: 3) > 0 ? t : UInt8(rng.next(below: 6))   // 0 = not predicted
            if labels[i] == 3 { labels[i] = 2 }                                                            // STR never predicted
        }
        let ann = try await ZarrArray.create(store: FileChunkStore(root: dir + "/ann.zarr"), path: "",
                                             metadata: ArrayMetadata(shape: [2, H, W], chunks: [1, 16, 16], dtype: .uint8))
        try await ann.write(ann.fullBox, truth)
        let run = dir + "/run.zarr"
        let lab = try await ZarrArray.create(store: FileChunkStore(root: run), path: "labels",
                                             metadata: ArrayMetadata(shape: [2, h, w], chunks: [1, 16, 16], dtype: .uint8))
        try await lab.write(lab.fullBox, labels)
        FileManager.default.createFile(atPath: run + "/run.json", contents: Data(#"{"identity": {"stride": "2"}}"#.utf8))
        // Chunk (1, 0, 0) never written: its pixels count as not predicted.
        try FileManager.default.removeItem(atPath: run + "/labels/1.0.0")
        for y in 0..<16 { for x in 0..<16 { labels[(1 * h + y) * w + x] = 0 } }

        let e = try await Evaluator.evaluate(run: run, annotations: dir + "/ann.zarr", slices: nil, map: .phantom, context: SourceOptions())
        var yTrue: [Int] = [], yPred: [Int] = [], missing = 0
        for i in labels.indices {
            let z = i / (h * w), y = i / w % h, x = i % w
            let t = Int(truth[(z * H + y * S) * W + x * S])
            guard (1...6).contains(t) else { continue }
            if labels[i] == 0 { missing += 1 } else { yTrue.append(t); yPred.append(Int(labels[i])) }
        }
        XCTAssertEqual(e.notPredicted.reduce(0, +), missing)
        XCTAssertEqual(e.total, yTrue.count)
        let file = dir + "/y.json"
        try JSONSerialization.data(withJSONObject: ["true": yTrue, "pred": yPred]).write(to: URL(fileURLWithPath: file))
        let out = try PythonReference.run("tools/reference/sklearn_metrics.py", [file])
        let ref = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        XCTAssertEqual(e.accuracy, ref["accuracy"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(e.confusion, ref["confusion"] as! [[Int]])
        for (name, values) in [("precision", (0..<6).map(e.precision)), ("recall", (0..<6).map(e.recall)), ("f1", (0..<6).map(e.f1))] {
            for (a, b) in zip(values, ref[name] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-12, name) }
        }
        XCTAssertEqual(e.macroF1, ref["macro_f1"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(e.precision(2), 0, "STR is never predicted: precision 0 (sklearn's zero_division=0)")

        // A mismatched annotation is refused.
        do {
            _ = try await Evaluator.evaluate(run: run, annotations: dir + "/run.zarr/labels", slices: nil, map: .phantom, context: SourceOptions())
            XCTFail("the run's own labels are not the source's shape")
        } catch { XCTAssertTrue("\(error)".contains("does not match the run"), "\(error)") }
    }

    /// Training on the phantom learns: validation accuracy on another slice far above chance (1/6) after ~14k
    /// patch-steps (a minute here; the demo trains 2.5× longer and reaches ~85%, see README).
    func testTrainingOnThePhantomLearns() async throws {
        let dir = PythonReference.tempDir("train-learn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = try await Self.phantom(dir, slices: 2)
        var o = TrainOptions(volume: g + "/raw", annotations: g + "/areas", trainSlices: [0], valSlices: [1], out: dir + "/m.safetensors")
        o.perClass = 300; o.valPerClass = 100; o.epochs = 8; o.lr = 3e-4
        let s = try await TrainJob(options: o, context: SourceOptions()).run()
        print("phantom training, validation accuracy per epoch: \(s.history.map(\.valAccuracy))")
        XCTAssertGreaterThan(s.bestValAccuracy, 0.7, "history: \(s.history.map(\.valAccuracy))")
        XCTAssertLessThan(s.history.last!.trainLoss, s.history.first!.trainLoss)
    }
}
