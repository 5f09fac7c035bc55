import XCTest
@testable import Analysis

/// Issue 17, cases 3 and 6: NMF's in-memory fit reports every iteration and says its cost up front; cluster refuses a
/// k its u1 cluster ids cannot hold instead of trapping.
final class AnalysisLimitTests: XCTestCase {
    func testInMemoryFitReportsEveryIteration() {
        var rng = SystemRandomNumberGenerator()
        let n = 300, d = 12, k = 4
        let x = (0..<(n * d)).map { _ in Double.random(in: 0..<1, using: &rng) }
        var (w, h) = NMF.nndsvda(x, rows: n, d: d, k: k)
        var seen: [(Int, Double)] = []
        let history = NMF.fit(x, rows: n, d: d, k: k, w: &w, h: &h, maxIter: 50) { seen.append(($0, $1)) }
        XCTAssertEqual(seen.map(\.0), Array(1...history.count))
        XCTAssertEqual(seen.map(\.1), history)
        let phase = NMFFitProgress.phase(rows: 100_000, d: 128, k: 65)
        XCTAssertTrue(phase.contains("100000 rows × 128 dims, k 65") && phase.contains("≤ 200 iterations of 2"), phase)
    }

    /// A clustering must stay within what factorize covered (its slices and mask), or refuse: the probe found it
    /// silently clustering the part that had coefficients.
    func testClusterStaysWithinTheFactorisation() throws {
        func check(_ mask: PixelMask, slices: [Int], _ f: [String: String]) -> String? {
            var o = ClusterOptions(run: "r.zarr"); o.on = "nmf"; o.mask = mask
            do { try ClusterJob.checkCoverage(o, slices: slices, stride: 16, factorized: f); return nil } catch { return "\(error)" }
        }
        let all = ["slices": "all", "mask": "labels"]
        XCTAssertNil(check(.predicted, slices: [0, 5], all))
        XCTAssertNil(check(.within(classID: 1, erode: 64), slices: [3], all))
        XCTAssertTrue(check(.predicted, slices: [3, 4], ["slices": "3", "mask": "labels"])?.contains("slice 4 has no coefficients") == true)
        // Erosion compares in run pixels: 60 and 63 source pixels are both 3 at stride 16.
        XCTAssertNil(check(.within(classID: 1, erode: 60), slices: [0], ["slices": "all", "mask": "labels == 1 eroded by 63 px"]))
        XCTAssertNil(check(.predicted, slices: [3], ["slices": "3,4", "mask": "labels"]))
        let ctx = ["slices": "all", "mask": "labels == 1"], eroded = ["slices": "all", "mask": "labels == 1 eroded by 32 px"]
        XCTAssertTrue(check(.predicted, slices: [0], ctx)?.contains("factorized under the mask 'labels == 1'") == true)
        XCTAssertNotNil(check(.within(classID: 2, erode: 0), slices: [0], ctx))
        XCTAssertNil(check(.within(classID: 1, erode: 0), slices: [0], ctx))
        XCTAssertNil(check(.within(classID: 1, erode: 64), slices: [0], eroded))
        XCTAssertNotNil(check(.within(classID: 1, erode: 16), slices: [0], eroded))
        XCTAssertNotNil(check(.source("/m.zarr"), slices: [0], ctx))
        XCTAssertNil(check(.source("/m.zarr"), slices: [0], ["slices": "all", "mask": "/m.zarr"]))
        var features = ClusterOptions(run: "r.zarr"); features.on = "features"
        XCTAssertNoThrow(try ClusterJob.checkCoverage(features, slices: [9], stride: 2, factorized: ["slices": "0", "mask": "labels == 1"]))
    }

    func testClusterRefusesMoreClustersThanU1Holds() async throws {
        var o = ClusterOptions(run: "/nonexistent/run.zarr")
        o.k = 256
        do { _ = try await ClusterJob(options: o).run(); XCTFail("k 256 must be refused") }
        catch { XCTAssertTrue("\(error)".contains("--k must be 2…255") && "\(error)".contains("got 256"), "\(error)") }
    }
}
