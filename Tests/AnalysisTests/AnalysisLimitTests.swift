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

    func testClusterRefusesMoreClustersThanU1Holds() async throws {
        var o = ClusterOptions(run: "/nonexistent/run.zarr")
        o.k = 256
        do { _ = try await ClusterJob(options: o).run(); XCTFail("k 256 must be refused") }
        catch { XCTAssertTrue("\(error)".contains("--k must be 2…255") && "\(error)".contains("got 256"), "\(error)") }
    }
}
