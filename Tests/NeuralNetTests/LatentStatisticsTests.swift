import Foundation
import XCTest
@testable import NeuralNet
import TestSupport

/// The anomaly map's class statistics and Mahalanobis distances against numpy and scipy.
final class LatentStatisticsTests: XCTestCase {
    /// Correlated ReLU-like rows (a third of each column exactly 0, one column constant: a singular sample
    /// covariance that shrinkage must make invertible), streamed in uneven blocks; the shrunk covariance equals numpy's
    /// and the distances of channel-first pixels equal scipy.spatial.distance.mahalanobis for their class.
    func testShrunkCovarianceAndDistancesMatchNumpyAndScipy() throws {
        let dir = PythonReference.tempDir("latent-stats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = 64, n = 400
        var r = SeededRandom(seed: 11)
        func normal() -> Double { (0..<4).reduce(0.0) { s, _ in s + Double(r.nextFloat()) } * 1.73 - 3.46 }
        func rows(_ count: Int, shift: Double) -> [Float] {
            var x = [Float](repeating: 0, count: count * d)
            for i in 0..<count {
                let common = normal()
                for j in 0..<d {
                    let v = shift + common * Double(j % 5) * 0.3 + normal()
                    x[i * d + j] = j == 7 ? 2.5 : Float(max(0, v))
                }
            }
            return x
        }
        let classes = [rows(n, shift: 0.5), rows(n, shift: 1.5)]
        var moments: [Moments] = []
        for x in classes {
            var m = Moments(d: d)
            for (lo, hi) in [(0, 13), (13, 250), (250, n)] {
                let part = x[(lo * d)..<(hi * d)].map(Double.init)
                part.withUnsafeBufferPointer { m.add($0.baseAddress!, rows: hi - lo) }
            }
            moments.append(m)
        }
        let stats = try LatentStatistics(moments: moments, shrinkage: 0.1, epoch: 3)
        // Pixels: 150 of class 1 (label 1), 150 of class 2 (label 2), 20 unpredicted (label 0), channel-first.
        let test = rows(320, shift: 1.0)
        let labels = (0..<320).map { UInt8($0 < 300 ? 1 + $0 % 2 : 0) }
        var planes = [Float](repeating: 0, count: 320 * d)
        for i in 0..<320 { for j in 0..<d { planes[j * 320 + i] = test[i * d + j] } }
        var out = [Float](repeating: 0, count: 320)
        planes.withUnsafeBufferPointer { p in labels.withUnsafeBufferPointer { l in out.withUnsafeMutableBufferPointer { o in
            stats.distances(latents: p.baseAddress!, labels: l.baseAddress!, count: 320, into: o.baseAddress!)
        } } }
        XCTAssertTrue(out[300...].allSatisfy(\.isNaN), "unpredicted pixels are NaN")
        for (c, x) in classes.enumerated() {
            let idx = (0..<300).filter { $0 % 2 == c }
            let t = idx.flatMap { test[($0 * d)..<(($0 + 1) * d)] }
            try Data(x.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: dir + "/x.bin"))
            try Data(t.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: dir + "/t.bin"))
            try PythonReference.run("tools/reference/augment_reference.py",
                                    ["stats", dir + "/x.bin", "\(n)", "\(d)", "0.1", dir + "/t.bin", "\(idx.count)", dir + "/r.bin"])
            let ref = try Data(contentsOf: URL(fileURLWithPath: dir + "/r.bin")).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let mine = stats.classes[c].mean + stats.classes[c].covariance
            XCTAssertEqual(ref.count, mine.count + idx.count)
            XCTAssertLessThan(zip(ref, mine).map { abs($0 - $1) }.max()!, 1e-9, "class \(c): mean and shrunk covariance")
            for (k, i) in idx.enumerated() {
                let r = ref[mine.count + k]
                XCTAssertEqual(Double(out[i]), r, accuracy: 1e-3 * max(1, r), "class \(c) pixel \(i)")
            }
        }
        // The sidecar form round-trips, factors included.
        let back = try JSONDecoder().decode(LatentStatistics.self, from: JSONEncoder().encode(stats))
        XCTAssertEqual(back, stats)
    }
}
