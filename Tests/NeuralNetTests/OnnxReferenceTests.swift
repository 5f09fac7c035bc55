import Foundation
import XCTest
import TestSupport
@testable import NeuralNet

/// The engine against onnxruntime running an ONNX graph of the same network built independently with onnx.helper.
final class OnnxReferenceTests: XCTestCase {
    static let height = 97, width = 145

    /// A uint8 test image with structure at several scales (smooth gradients, stripes, noise).
    static func image() -> [UInt8] {
        var s: UInt64 = 12345
        return (0..<(height * width)).map { i in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let y = Double(i / width), x = Double(i % width)
            let v = 110 + 60 * sin(x / 9) * cos(y / 13) + 30 * sin((x + y) / 3) + Double(s >> 58) * 2
            return UInt8(max(0, min(255, v)))
        }
    }

    /// Corners, edges, interior, and points on the 16-grid so every output stride has test pixels.
    static let pixels: [(Int, Int)] = {
        var p: [(Int, Int)] = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1), (0, 70), (50, 0),
                               (height - 1, 77), (41, width - 1), (48, 72), (1, 1), (95, 143), (63, 64), (64, 67)]
        for r in stride(from: 0, to: height, by: 32) { for c in stride(from: 0, to: width, by: 48) { p.append((r, c)) } }
        p.append((16, 16)); p.append((80, 112))
        return p
    }()

    struct Reference { let exact: ([Float], [Float]); let dense: ([Float], [Float]) }

    static func reference(dir: String, weights: String) throws -> Reference {
        try Data(image()).write(to: URL(fileURLWithPath: dir + "/image.bin"))
        let px = pixels.map { [$0.0, $0.1] }
        try JSONSerialization.data(withJSONObject: px).write(to: URL(fileURLWithPath: dir + "/pixels.json"))
        try PythonReference.run("tools/onnx_reference.py", ["run", weights, dir + "/image.bin", "\(height)", "\(width)", dir + "/pixels.json", dir])
        func load(_ n: String) throws -> [Float] {
            let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + n + ".bin"))
            return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return Reference(exact: (try load("exact_latents"), try load("exact_logits")),
                         dense: (try load("dense_latents"), try load("dense_logits")))
    }

    /// max |ours − ref| ≤ 1e-4 · max |ref| over one pixel's vector.
    func assertClose(_ ours: ArraySlice<Float>, _ ref: ArraySlice<Float>, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(ref.map { abs($0) }.max() ?? 0, 1e-6)
        let err = zip(ours, ref).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(err / scale, 1e-4, "\(what): max error \(err) at scale \(scale)", file: file, line: line)
    }

    func testExactAndDenseMatchOnnxruntime() throws {
        let dir = PythonReference.tempDir("onnx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Python writes weights with the official safetensors library; we load them, save them again, and the
        // reference runs on our file: both directions of the format are exercised.
        try PythonReference.run("tools/onnx_reference.py", ["weights", dir, "7"])
        let model = try AreaClassifier(contentsOf: dir + "/weights.safetensors")
        try Safetensors.save(model.parameters, path: dir + "/ours.safetensors")
        let ref = try Self.reference(dir: dir, weights: dir + "/ours.safetensors")
        let img = Self.image(), H = Self.height, W = Self.width, n = Self.pixels.count

        let exact = PatchEvaluator(model: model, threads: 2).evaluate(plane: img, height: H, width: W, pixels: Self.pixels)
        XCTAssertEqual(exact.count, n)
        for i in 0..<n {
            assertClose(exact.latents[(i * 64)..<((i + 1) * 64)], ref.exact.0[(i * 64)..<((i + 1) * 64)], "exact latents at \(Self.pixels[i])")
            assertClose(exact.logits[(i * 6)..<((i + 1) * 6)], ref.exact.1[(i * 6)..<((i + 1) * 6)], "exact logits at \(Self.pixels[i])")
        }
        // The two nets really differ near the border (the padded net reads its padding), so the check can tell them apart.
        let scale = ref.dense.1.map { abs($0) }.max()!
        XCTAssertGreaterThan(zip(ref.exact.1, ref.dense.1).map { abs($0 - $1) }.max()! / scale, 1e-3)

        let gemm = DenseEvaluator(model: model, fc1: .gemm), fft = DenseEvaluator(model: model, fc1: .fft)
        for (S, tile, parallel, dense) in [(1, 40, 2, gemm), (1, 256, 1, gemm), (2, 23, 2, gemm), (4, 16, 1, gemm), (8, 5, 2, gemm),
                                           (16, 3, 1, gemm), (1, 176, 1, fft), (1, 37, 2, fft), (2, 50, 1, fft), (8, 7, 2, fft), (16, 4, 1, fft)] {
            let out = try dense.evaluate(plane: img, height: H, width: W, rows: 0..<H, cols: 0..<W, stride: S, tile: tile, parallelTiles: parallel)
            XCTAssertEqual(out.height, (H + S - 1) / S); XCTAssertEqual(out.width, (W + S - 1) / S)
            var checked = 0
            for (i, (r, c)) in Self.pixels.enumerated() where r % S == 0 && c % S == 0 {
                let oy = r / S, ox = c / S, plane = out.height * out.width
                let lat = (0..<64).map { out.latents[$0 * plane + oy * out.width + ox] }
                let log = (0..<6).map { out.logits[$0 * plane + oy * out.width + ox] }
                assertClose(lat[...], ref.dense.0[(i * 64)..<((i + 1) * 64)], "dense \(dense.fc1Algorithm) S=\(S) tile \(tile) latents at \((r, c))")
                assertClose(log[...], ref.dense.1[(i * 6)..<((i + 1) * 6)], "dense \(dense.fc1Algorithm) S=\(S) tile \(tile) logits at \((r, c))")
                checked += 1
            }
            XCTAssertGreaterThanOrEqual(checked, 6, "stride \(S) must have test pixels")
        }
    }

    func testWeightsOfTheWrongShapeAreRefused() throws {
        var p = AreaClassifier.randomParameters(seed: 1)
        p["fc1.weight"] = Tensor(zeros: [1024, 4096])
        XCTAssertThrowsError(try AreaClassifier(parameters: p, source: "w.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("fc1.weight") && "\(e)".contains("[1024, 4608]"), "\(e)")
        }
        p.removeValue(forKey: "conv3.bias")
        XCTAssertThrowsError(try AreaClassifier(parameters: p, source: "w.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("conv3.bias"), "\(e)")
        }
    }

    func testSafetensorsRoundTripAndBadFiles() throws {
        let p = AreaClassifier.randomParameters(seed: 3)
        let bytes = Safetensors.encode(p)
        XCTAssertEqual(try Safetensors.decode(bytes, path: "x"), p)
        XCTAssertThrowsError(try Safetensors.decode(Array(bytes.prefix(bytes.count - 10)), path: "cut.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("cut.safetensors"), "\(e)")
        }
        XCTAssertThrowsError(try Safetensors.decode([1, 2, 3], path: "tiny"))
        var f16 = Array(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#.utf8)
        let n = f16.count
        f16 = (0..<8).map { UInt8((n >> (8 * $0)) & 0xff) } + f16 + [0, 0, 0, 0]
        XCTAssertThrowsError(try Safetensors.decode(f16, path: "half")) { e in XCTAssertTrue("\(e)".contains("F16"), "\(e)") }
    }
}
