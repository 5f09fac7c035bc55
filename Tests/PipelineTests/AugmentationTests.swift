import Foundation
import XCTest
import NeuralNet
@testable import Pipeline
import TestSupport

/// `train --augment` against numpy/scipy, and the class-balanced batch order.
final class AugmentationTests: XCTestCase {
    /// Every geometry (8 symmetries), blur on and off, gamma/contrast/brightness, compared with np.rot90, .T and
    /// scipy.ndimage.gaussian_filter on random 37² patches (odd side: a transpose/rotation mix-up cannot hide).
    func testTransformsMatchNumpyAndScipy() throws {
        let dir = PythonReference.tempDir("augment")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let side = 37, n = 12
        var r = SeededRandom(seed: 7)
        let patches = (0..<(n * side * side)).map { _ in UInt8(truncatingIfNeeded: r.next()) }
        var draws: [Augmentation.Draw] = []
        for i in 0..<n {
            var d = Augmentation.standard.draw(seed: 3, epoch: 1, sample: i)
            d.transpose = i % 2 == 1; d.rotations = (i / 2) % 4          // all 8 symmetries
            if i == 0 { d = Augmentation.Draw() }                          // the identity
            if i == 3 { d.sigma = 1.7 }                                   // a wide kernel (radius 5)
            draws.append(d)
        }
        XCTAssertTrue(draws.contains { $0.sigma > 0 } && draws.contains { $0.sigma == 0 && $0.gamma != 1 })
        var out = [Float](repeating: 0, count: n * side * side), scratch = [Float](repeating: 0, count: side * side)
        patches.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in scratch.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                Augmentation.apply(draws[i], source: p.baseAddress! + i * side * side, side: side, to: o.baseAddress! + i * side * side,
                                   scratch: s.baseAddress!)
            }
        } } }
        FileManager.default.createFile(atPath: dir + "/p.bin", contents: Data(patches))
        let json = draws.map { ["transpose": $0.transpose, "rotations": $0.rotations, "sigma": Double($0.sigma), "gamma": Double($0.gamma),
                                "contrast": Double($0.contrast), "brightness": Double($0.brightness)] as [String: Any] }
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/d.json"))
        try PythonReference.run("tools/reference/augment_reference.py", ["augment", dir + "/p.bin", "\(side)", dir + "/d.json", dir + "/o.bin"])
        let ref = try Data(contentsOf: URL(fileURLWithPath: dir + "/o.bin")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(ref.count, out.count)
        for i in 0..<n {
            let worst = (0..<(side * side)).map { abs(out[i * side * side + $0] - ref[i * side * side + $0]) }.max()!
            XCTAssertLessThan(worst, 2e-5, "patch \(i) \(draws[i])")
        }
        // The identity draw is the plain u1 → [0, 1] conversion.
        XCTAssertEqual(Array(out[0..<(side * side)]), patches[0..<(side * side)].map { Float($0) * (1 / 255) })
    }

    /// Draws are a function of (seed, epoch, sample) only; parse/describe round-trip; bad specs name the key.
    func testDrawsAreSeededAndSpecsParse() throws {
        let a = Augmentation.standard
        XCTAssertEqual(a.draw(seed: 1, epoch: 2, sample: 5), a.draw(seed: 1, epoch: 2, sample: 5))
        XCTAssertNotEqual(a.draw(seed: 1, epoch: 2, sample: 5), a.draw(seed: 1, epoch: 3, sample: 5))
        XCTAssertEqual(try Augmentation.parse(a.description), a)
        XCTAssertTrue(try Augmentation.parse("none").isIdentity)
        XCTAssertThrowsError(try Augmentation.parse("gama=0.3")) { XCTAssertTrue("\($0)".contains("gama"), "\($0)") }
        XCTAssertThrowsError(try Augmentation.parse("contrast=1.5")) { XCTAssertTrue("\($0)".contains("contrast"), "\($0)") }
        // Out-of-range strengths, a key twice, an empty spec, a number too large for a Float: each named.
        for (spec, says) in [("brightness=5", "brightness must be ≥ 0 and ≤ 1"), ("gamma=50", "gamma must be ≥ 0 and ≤ 2"),
                             ("blur=100", "blur must be ≥ 0 and ≤ 16"), ("gamma=0.3,gamma=0.5", "gamma is given twice"),
                             ("", "--augment is empty"), ("blur=1e300", "blur must be ≥ 0 and ≤ 16 pixels; got 1e300"),
                             ("geometry,", "an empty item"), ("=1", "'=1' has no key"), ("blur=", "is not blur=NUMBER"), ("blur=x", "is not blur=NUMBER"), ("geometry=1", "geometry takes no value"),
                             ("standard,gamma=0.5", "standard stands alone"), ("contrast=1", "contrast must be ≥ 0 and < 1")] {
            XCTAssertThrowsError(try Augmentation.parse(spec), spec) { XCTAssertTrue("\($0)".contains(says), "\(spec): \($0)") }
        }
    }

    /// With equal class counts every run of 6 consecutive patches holds each class once; the order is a
    /// permutation, seeded by (seed, epoch).
    func testBalancedOrder() {
        let labels = (0..<600).map { $0 % 6 }.shuffled()
        let order = Augmentation.balancedOrder(labels: labels, classes: 6, seed: 4, epoch: 2)
        XCTAssertEqual(order.sorted(), Array(0..<600))
        for r in Swift.stride(from: 0, to: 600, by: 6) { XCTAssertEqual(Set(order[r..<(r + 6)].map { labels[$0] }).count, 6) }
        XCTAssertEqual(order, Augmentation.balancedOrder(labels: labels, classes: 6, seed: 4, epoch: 2))
        XCTAssertNotEqual(order, Augmentation.balancedOrder(labels: labels, classes: 6, seed: 4, epoch: 3))
    }
}
