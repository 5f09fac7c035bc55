import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// The BossDB source against a fake BossDB (tools/fake_bossdb.py) on loopback serving a Zarr array.
final class BossDBTests: XCTestCase {
    var dir = ""
    var local: ZarrArray!

    override func setUp() async throws {
        dir = PythonReference.tempDir("boss")
        let store = FileChunkStore(root: dir + "/vol.zarr/raw")
        let shape = [20, 300, 1100]   // spans several 16×512×512 cutout blocks in z and x
        let md = ArrayMetadata(shape: shape, chunks: [4, 128, 128], dtype: .uint16, codec: try BloscCodec())
        local = try await ZarrArray.create(store: store, path: "", metadata: md)
        var s: UInt64 = 11
        let n = shape.reduce(1, *)
        var data = [UInt8](repeating: 0, count: 2 * n)
        for i in 0..<n { s = s &* 6364136223846793005 &+ 1442695040888963407; data[2 * i] = UInt8(truncatingIfNeeded: s >> 40); data[2 * i + 1] = UInt8(truncatingIfNeeded: i >> 9) }
        try await local.write(local.fullBox, data)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testCutoutsMatchTheServedArray() async throws {
        let boss = try LoopbackServer.fakeBossDB(array: dir + "/vol.zarr/raw", ["--collection", "prasad", "--experiment", "prasad2020",
                                                                                 "--channel", "image", "--token", "s3cret", "--throttle-every", "4"])
        defer { boss.stop() }
        var opts = SourceOptions(); opts.bossdbHost = boss.url; opts.bossdbToken = "s3cret"; opts.cache = nil
        let stats = TransferStats()
        opts.fetcher = RemoteFetcher(client: HTTPClient(), stats: stats); opts.fetcher.baseDelay = 0.01
        let remote = try await VolumeSource.open("bossdb://prasad/prasad2020/image", options: opts)
        XCTAssertEqual(remote.shape, local.shape)
        XCTAssertEqual(remote.dtype, .uint16)
        let box = Box([3..<19, 10..<290, 100..<1050])
        let want = try await local.read(box), got = try await remote.read(box)
        XCTAssertEqual(got, want)
        XCTAssertGreaterThan(stats.retryReasons["HTTP 429"] ?? 0, 0, "throttling was met and waited out: \(stats.summary)")
        // A coarser resolution level: y and x halved (anisotropic hierarchy).
        let r1 = try await VolumeSource.open("bossdb://prasad/prasad2020/image?res=1", options: opts)
        XCTAssertEqual(r1.shape, [20, 150, 550])
        let row = try await r1.read(Box([5..<6, 7..<8, 0..<550]))
        let full = try await local.read(Box([5..<6, 14..<15, 0..<1100]))
        XCTAssertEqual(row, (0..<550).flatMap { [full[4 * $0], full[4 * $0 + 1]] })
    }

    func testMissingTokenIsAClearError() async throws {
        let boss = try LoopbackServer.fakeBossDB(array: dir + "/vol.zarr/raw", ["--collection", "c", "--experiment", "e", "--channel", "ch", "--token", "t"])
        defer { boss.stop() }
        var opts = SourceOptions(); opts.bossdbHost = boss.url
        do {
            _ = try await VolumeSource.open("bossdb://c/e/ch", options: opts)
            XCTFail("expected an error")
        } catch { XCTAssertTrue("\(error)".contains("401") && "\(error)".contains("BOSSDB_TOKEN"), "\(error)") }
        do {
            _ = try await VolumeSource.open("bossdb://c/e", options: opts)
            XCTFail("expected an error")
        } catch { XCTAssertTrue("\(error)".contains("collection/experiment/channel"), "\(error)") }
    }
}
