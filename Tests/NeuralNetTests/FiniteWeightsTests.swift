import Foundation
import XCTest
import TestSupport
@testable import NeuralNet

/// Issue 17, case 2 (loading side): weights with a NaN or an infinity are refused at load, naming the tensor — a
/// diverged model used to load and label every pixel CTX with NaN probabilities.
final class FiniteWeightsTests: XCTestCase {
    func testNonFiniteWeightsAreRefusedNamingTheTensor() throws {
        let good = AreaClassifier.randomParameters(seed: 3)
        XCTAssertNoThrow(try AreaClassifier(parameters: good))
        for (name, value) in [("fc1.weight", Float.nan), ("conv3.bias", .infinity), ("fc3.weight", -.infinity)] {
            var p = good
            var t = p[name]!
            t.data[t.data.count / 2] = value
            p[name] = t
            XCTAssertThrowsError(try AreaClassifier(parameters: p, source: "m.safetensors")) { e in
                let m = "\(e)"
                XCTAssertTrue(m.contains("m.safetensors") && m.contains("'\(name)'") && m.contains("1 non-finite")
                              && m.contains("element \(t.data.count / 2)"), m)
            }
        }
        // From a file, as predict and evaluate load it.
        let dir = PythonReference.tempDir("nan-model")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var p = good
        p["fc2.weight"] = Tensor(shape: p["fc2.weight"]!.shape, data: [Float](repeating: .nan, count: p["fc2.weight"]!.data.count))
        try Safetensors.save(p, path: dir + "/nan.safetensors")
        XCTAssertThrowsError(try AreaClassifier(contentsOf: dir + "/nan.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("'fc2.weight' holds 65536 non-finite values"), "\(e)")
        }
        XCTAssertNil(FiniteWeights.firstNonFinite(good.map { (name: $0.key, tensor: $0.value) }))
    }
}
