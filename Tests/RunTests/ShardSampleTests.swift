import Foundation
import XCTest
@testable import Run

/// The sample a merge draws from N shards' published reservoirs: each shard writes at most 4·size/N rows (not its
/// whole reservoir), a shard with more than 4× the average rows shrinks every share by one factor, and the rows taken
/// are the same in every process.
final class ShardSampleTests: XCTestCase {
    func testPublishedSamplesAreCappedAndSharesStayProportional() async throws {
        let root = NSTemporaryDirectory() + "/brainmap-shard-sample-\(UUID().uuidString)/run.zarr"
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let session = try Run.openForPredict(root).begin(step: "nmf", command: "factorize", parameters: Parameters([("k", "2")]),
                                                         inputs: [:], outputs: [])
        let d = 2, size = 3000, n = 10
        // Shard i's rows are (i, j): a reservoir of min(size, seen) rows. Shard 9 saw 10× the rows of the others.
        let seen = (0..<n).map { $0 == 9 ? 100_000 : 10_000 }
        for i in 0..<n {
            let ex = try ShardExchange(session: session, shard: try Shard(index: i, count: n), parameters: [:], command: "t", waits: false)
            let held = min(size, seen[i])
            try ex.publishSample((0..<held).flatMap { [Double(i), Double($0)] }, seen: seen[i], d: d, size: size, blocks: 1000, tag: "s")
            let bytes = try FileManager.default.attributesOfItem(atPath: ex.sampleFile("s", i))[.size] as! Int
            XCTAssertEqual(bytes, 4 * size / n * d * 8, "shard \(i) writes 4·size/N rows, not its \(held)")
        }
        let reduce = try ShardExchange(session: session, shard: try Shard(index: 0, count: n), parameters: [:], command: "t", waits: false)
        let (rows, total) = try await reduce.sample("s", d: d, size: size, wait: false, waiting: { _ in })
        XCTAssertEqual(total, seen.reduce(0, +))
        var perShard = [Int](repeating: 0, count: n)
        for r in 0..<(rows.count / d) { perShard[Int(rows[r * d])] += 1 }
        // Shard 9's share is 3000·100000/190000 = 1578 rows, but it wrote 1200: every share (157) scales by 1200/1578.
        XCTAssertEqual(perShard[9], 1200)
        for i in 0..<9 { XCTAssertEqual(perShard[i], 119, "shard \(i)") }
        let again = try await reduce.sample("s", d: d, size: size, wait: false, waiting: { _ in })
        XCTAssertEqual(again.rows, rows)
    }
}
