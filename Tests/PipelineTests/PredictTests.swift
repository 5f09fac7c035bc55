import Foundation
import XCTest
import NeuralNet
import Phantom
import TestSupport
import VolumeStore
@testable import Pipeline

/// A small phantom and random weights on disk, shared by the pipeline tests.
enum PredictFixture {
    static func make(_ name: String, shape: [Int] = [2, 200, 260], chunks: [Int] = [1, 64, 64]) async throws -> (dir: String, raw: String, weights: String) {
        let dir = PythonReference.tempDir(name)
        try await PhantomWriter.write(to: dir + "/ph.zarr", shape: shape, seed: 3, chunks: chunks, pyramidLevels: 1)
        try Safetensors.save(AreaClassifier.randomParameters(seed: 7), path: dir + "/w.safetensors")
        return (dir, dir + "/ph.zarr/raw", dir + "/w.safetensors")
    }

    /// Every data file of a run's arrays (journal, run.json and temporary files aside), by relative path.
    static func arrayFiles(_ run: String) -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        for k in OutputKind.allCases.map(\.rawValue) {
            guard let e = fm.enumerator(atPath: run + "/" + k) else { continue }
            for case let f as String in e where !(f as NSString).lastPathComponent.hasPrefix(".tmp") {
                var d: ObjCBool = false
                if fm.fileExists(atPath: "\(run)/\(k)/\(f)", isDirectory: &d), !d.boolValue { out["\(k)/\(f)"] = fm.contents(atPath: "\(run)/\(k)/\(f)") }
            }
        }
        return out
    }

    static func floats(_ b: [UInt8]) -> [Float] { b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
}

final class PredictTests: XCTestCase {
    /// Dense predict equals the engine run on the whole in-memory slice, at every pixel incl. the volume's edges
    /// (same tiles, so bit for bit), and its arrays are what zarr-python reads.
    func testDenseOutputsEqualTheEngineOnTheWholeSlice() async throws {
        let f = try await PredictFixture.make("predict-dense")
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        var o = PredictOptions(source: f.raw, model: f.weights, out: f.dir + "/run.zarr")
        o.slices = [1]; o.mask = .none; o.tile = 48; o.block = 96
        let s = try await PredictJob(options: o, context: SourceOptions()).run()
        XCTAssertEqual(s.blocksDone, 9)
        XCTAssertEqual(s.pixelsPredicted, 200 * 260)

        let raw = try await VolumeSource.open(f.raw)
        let plane = try await raw.read(Box([1..<2, 0..<200, 0..<260]))
        let model = try AreaClassifier(contentsOf: f.weights)
        let ref = try DenseEvaluator(model: model).evaluate(plane: plane, height: 200, width: 260, rows: 0..<200, cols: 0..<260,
                                                             stride: 1, tile: 48)
        let run = try await VolumeSource.open(f.dir + "/run.zarr/features")
        let feat = PredictFixture.floats(try await run.read(Box([0..<64, 1..<2, 0..<200, 0..<260])))
        XCTAssertEqual(feat, ref.latents, "features = the engine's latents, bit for bit")
        let labels = try await VolumeSource.open(f.dir + "/run.zarr/labels").read(Box([1..<2, 0..<200, 0..<260]))
        let probs = PredictFixture.floats(try await VolumeSource.open(f.dir + "/run.zarr/probabilities").read(Box([0..<6, 1..<2, 0..<200, 0..<260])))
        let ent = PredictFixture.floats(try await VolumeSource.open(f.dir + "/run.zarr/entropy").read(Box([1..<2, 0..<200, 0..<260])))
        let n = 200 * 260
        for i in stride(from: 0, to: n, by: 37) {
            let logits = (0..<6).map { Double(ref.logits[$0 * n + i]) }
            let m = logits.max()!, e = logits.map { exp($0 - m) }, z = e.reduce(0, +)
            let p = e.map { $0 / z }
            for c in 0..<6 { XCTAssertEqual(Double(probs[c * n + i]), p[c], accuracy: 1e-6) }
            XCTAssertEqual(Int(labels[i]), logits.firstIndex(of: m)! + 1)
            XCTAssertEqual(Double(ent[i]), -p.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) }, accuracy: 1e-5)
        }
        // Slice 0 was not asked for: missing chunks, read as fill (label 0, NaN).
        let l0 = try await VolumeSource.open(f.dir + "/run.zarr/labels").read(Box([0..<1, 0..<200, 0..<260]))
        XCTAssertTrue(l0.allSatisfy { $0 == 0 })

        // zarr-python reads the same arrays (shape, dtype, values), and the group's OME metadata.
        let out = try PythonReference.run("tools/interop/run_check.py", [f.dir + "/run.zarr", "1"])
        XCTAssertTrue(out.contains("labels (2, 200, 260) uint8"), out)
        XCTAssertTrue(out.contains("features (64, 2, 200, 260) float32"), out)
        XCTAssertTrue(out.contains("image groups 4"), out)
        let sums = out.split(separator: "\n").filter { $0.hasPrefix("sum ") }
        XCTAssertEqual(sums.first.map(String.init), "sum labels \(labels.reduce(0) { $0 + Int($1) })")

        // Pyramids (levels 200×260 → 100×130 → 50×65 in chunks of 96): every level equals numpy's mode / NaN-mean of
        // the level below (slice 0, not predicted, is fill on every level), and ome-zarr-py (napari's reader) opens
        // each output as a node with its three levels, labels as a label layer with the six class colours.
        let pyr = try PythonReference.run("tools/interop/pyramid_check.py", ["run", f.dir + "/run.zarr"])
        XCTAssertEqual(pyr.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, 4 * 2, pyr)
        XCTAssertTrue(pyr.contains("ok labels level 2 (2, 50, 65) uint8 mode"), pyr)
        XCTAssertTrue(pyr.contains("ok features level 2 (64, 2, 50, 65) float32 mean"), pyr)
        XCTAssertTrue(pyr.contains("napari labels label levels 3 colors 6"), pyr)
        XCTAssertTrue(pyr.contains("napari probabilities image levels 3 colors 0"), pyr)
    }

    /// Exact mode is the paper's padded-128 net at each grid pixel, and f16 output rounds it.
    func testExactModeAtAStrideEqualsThePatchNet() async throws {
        let f = try await PredictFixture.make("predict-exact", shape: [1, 120, 150])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        var o = PredictOptions(source: f.raw, model: f.weights, out: f.dir + "/run.zarr")
        o.mode = .exact; o.stride = 8; o.mask = .none; o.precision = .f16; o.outputs = [.features, .labels]
        let s = try await PredictJob(options: o, context: SourceOptions()).run()
        XCTAssertEqual(s.pixelsPredicted, 15 * 19)
        let raw = try await VolumeSource.open(f.raw)
        let plane = try await raw.read(Box([0..<1, 0..<120, 0..<150]))
        let pixels = (0..<15).flatMap { y in (0..<19).map { x in (8 * y, 8 * x) } }
        let ref = PatchEvaluator(model: try AreaClassifier(contentsOf: f.weights), threads: 1)
            .evaluate(plane: plane, height: 120, width: 150, pixels: pixels)
        let arr = try await VolumeSource.open(f.dir + "/run.zarr/features")
        XCTAssertEqual(arr.dtype, .float16)
        XCTAssertEqual(arr.shape, [64, 1, 15, 19])
        let got = try await arr.read(arr.fullBox).withUnsafeBytes { Array($0.bindMemory(to: Float16.self)) }
        let n = pixels.count
        for i in 0..<n { for c in 0..<64 {
            let r = ref.latents[i * 64 + c]
            XCTAssertEqual(Float(got[c * n + i]), r, accuracy: 2e-3 * max(1, abs(r)))
        } }
        let labels = try await VolumeSource.open(f.dir + "/run.zarr/labels").read(Box([0..<1, 0..<15, 0..<19]))
        for i in 0..<n {
            let l = (0..<6).map { ref.logits[i * 6 + $0] }
            XCTAssertEqual(Int(labels[i]), l.firstIndex(of: l.max()!)! + 1)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.dir + "/run.zarr/probabilities"), "--outputs picks a subset")
    }

    /// The automatic mask finds the phantom's tissue; a mask source is followed pixel by pixel; blocks without tissue
    /// are skipped (journaled, never written).
    func testTissueMasks() async throws {
        let f = try await PredictFixture.make("predict-mask", shape: [1, 710, 1450])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let raw = try await VolumeSource.open(f.raw)
        let areas = try await VolumeSource.open(f.dir + "/ph.zarr/areas").read(Box([0..<1, 0..<710, 0..<1450]))
        let provider = try await MaskProvider(rule: .automatic, source: raw, context: SourceOptions())
        let auto = try await provider.mask(0)!
        // Tissue is kept (recall), and background farther than 48 px from tissue is dropped (the rule's margin is
        // one 16-px cell of dilation plus the closing).
        // near[i]: some tissue within the 97×97 square around i (separable running counts).
        let H = 710, W = 1450, r = 48
        var rowHit = [Int](repeating: 0, count: H * W)
        for y in 0..<H {
            var prefix = [Int](repeating: 0, count: W + 1)
            for x in 0..<W { prefix[x + 1] = prefix[x] + (areas[y * W + x] != 0 ? 1 : 0) }
            for x in 0..<W { rowHit[y * W + x] = prefix[min(W, x + r + 1)] - prefix[max(0, x - r)] }
        }
        var near = [Bool](repeating: false, count: H * W)
        for x in 0..<W {
            var prefix = [Int](repeating: 0, count: H + 1)
            for y in 0..<H { prefix[y + 1] = prefix[y] + rowHit[y * W + x] }
            for y in 0..<H { near[y * W + x] = prefix[min(H, y + r + 1)] - prefix[max(0, y - r)] > 0 }
        }
        var tissue = 0, kept = 0, far = 0, dropped = 0
        for y in 0..<710 { for x in 0..<1450 {
            let i = y * 1450 + x, t = auto.isTissue(y: y, x: x)
            if areas[i] != 0 { tissue += 1; if t { kept += 1 } } else if !near[i] { far += 1; if !t { dropped += 1 } }
        } }
        XCTAssertGreaterThan(tissue, 10_000); XCTAssertGreaterThan(far, 10_000)
        XCTAssertGreaterThan(Double(kept) / Double(tissue), 0.99, "tissue kept by the automatic mask")
        XCTAssertGreaterThan(Double(dropped) / Double(far), 0.95, "background away from tissue dropped")

        var o = PredictOptions(source: f.raw, model: f.weights, out: f.dir + "/run.zarr")
        o.stride = 8; o.mask = .source(f.dir + "/ph.zarr/areas"); o.block = 32; o.tile = 32
        let s = try await PredictJob(options: o, context: SourceOptions()).run()
        let labels = try await VolumeSource.open(f.dir + "/run.zarr/labels").read(Box([0..<1, 0..<89, 0..<182]))
        for y in 0..<89 { for x in 0..<182 {
            XCTAssertEqual(labels[y * 182 + x] == 0, areas[8 * y * 1450 + 8 * x] == 0, "pixel \(y),\(x)")
        } }
        XCTAssertEqual(s.blocksDone, 3 * 6)

        // A coarse mask (8× smaller, rounded up) with its left half empty: those blocks are skipped, never written.
        let coarse = try await ZarrArray.create(store: FileChunkStore(root: f.dir + "/mask.zarr"), path: "",
                                                metadata: ArrayMetadata(shape: [1, 89, 182], chunks: [1, 89, 182], dtype: .uint8))
        try await coarse.write(coarse.fullBox, (0..<(89 * 182)).map { $0 % 182 >= 91 ? 1 : 0 })
        o.mask = .source(f.dir + "/mask.zarr"); o.out = f.dir + "/run2.zarr"
        let s2 = try await PredictJob(options: o, context: SourceOptions()).run()
        XCTAssertEqual(s2.blocksWithoutTissue, 3 * 2, "block columns 0 and 1 (source x < 512) have no tissue")
        let written = PredictFixture.arrayFiles(f.dir + "/run2.zarr").keys.filter { $0.hasPrefix("labels/0/") && !$0.contains(".z") }
        XCTAssertEqual(written.count, 18 - 6)
        let l2 = try await VolumeSource.open(f.dir + "/run2.zarr/labels").read(Box([0..<1, 0..<89, 0..<182]))
        for y in 0..<89 { for x in 0..<182 { XCTAssertEqual(l2[y * 182 + x] != 0, x >= 91, "pixel \(y),\(x)") } }
    }

    /// A resume with other parameters is refused, naming what differs; --restart starts over; a budget below one
    /// tile is refused with the minimum; a non-safetensors model names the converter.
    func testRefusals() async throws {
        let f = try await PredictFixture.make("predict-refuse", shape: [1, 64, 64])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        var o = PredictOptions(source: f.raw, model: f.weights, out: f.dir + "/run.zarr")
        o.stride = 8; o.mask = .none
        _ = try await PredictJob(options: o, context: SourceOptions()).run()
        var other = o; other.stride = 4
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("different stride accepted") }
        catch { XCTAssertTrue("\(error)".contains("stride: the run has 8, this command has 4") && "\(error)".contains("--restart"), "\(error)") }
        try Safetensors.save(AreaClassifier.randomParameters(seed: 8), path: f.dir + "/w2.safetensors")
        other = o; other.model = f.dir + "/w2.safetensors"
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("different model accepted") }
        catch { XCTAssertTrue("\(error)".contains("model_sha256"), "\(error)") }
        other.restart = true
        let s = try await PredictJob(options: other, context: SourceOptions()).run()
        XCTAssertEqual(s.blocksAlreadyDone, 0)
        let again = try await PredictJob(options: other.with { $0.restart = false }, context: SourceOptions()).run()
        XCTAssertEqual(again.blocksAlreadyDone, 1)
        XCTAssertEqual(again.blocksDone, 0)

        other = o; other.memoryBudget = 100 << 20; other.out = f.dir + "/run2.zarr"
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("tiny budget accepted") }
        catch let e as PipelineError { XCTAssertTrue("\(e)".contains("needs at least"), "\(e)") }
        FileManager.default.createFile(atPath: f.dir + "/model.pt", contents: Data("PK\u{3}\u{4}not weights".utf8))
        other = o; other.model = f.dir + "/model.pt"; other.out = f.dir + "/run3.zarr"
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("bad model accepted") }
        catch let e as PipelineError { XCTAssertTrue("\(e)".contains("tools/export_weights.py"), "\(e)") }
        other = o; other.source = f.dir + "/ph.zarr/nothing"; other.out = f.dir + "/run4.zarr"
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("missing source accepted") }
        catch { XCTAssertTrue("\(error)".contains("nothing"), "\(error)") }
        other = o; other.slices = [3]; other.out = f.dir + "/run5.zarr"
        do { _ = try await PredictJob(options: other, context: SourceOptions()).run(); XCTFail("slice out of range accepted") }
        catch { XCTAssertTrue("\(error)".contains("slice 3 is outside"), "\(error)") }
    }

    func testSHA256MatchesHashlib() throws {
        let dir = PythonReference.tempDir("sha")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for n in [0, 3, 55, 56, 64, 1000, 3 << 20] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
            FileManager.default.createFile(atPath: dir + "/f", contents: Data(bytes))
            let ref = try PythonReference.run("tools/interop/sha256.py", [dir + "/f"]).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(try SHA256.file(dir + "/f"), ref, "length \(n)")
        }
    }
}

extension PredictOptions {
    func with(_ change: (inout PredictOptions) -> Void) -> PredictOptions { var c = self; change(&c); return c }
}
