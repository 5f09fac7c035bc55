import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Remote reads against real servers on loopback: nginx serving Zarr stores, and a fault-injecting proxy in front.
final class RemoteStoreTests: XCTestCase {
    var root = ""
    var nginx: LoopbackServer!
    let shape = [3, 150, 230], chunks = [1, 64, 64]
    var expected: [UInt8] = []

    override func setUp() async throws {
        root = PythonReference.tempDir("remote")
        let store = FileChunkStore(root: root + "/vol.zarr/raw")
        let md = ArrayMetadata(shape: shape, chunks: chunks, dtype: .uint16, fillValue: 7, codec: try BloscCodec(cname: "zstd", shuffle: 2))
        let a = try await ZarrArray.create(store: store, path: "", metadata: md)
        var s: UInt64 = 3
        let n = shape.reduce(1, *)
        var data = [UInt8](repeating: 0, count: n * 2)
        for i in 0..<n { s = s &* 6364136223846793005 &+ 1; let v = UInt16(truncatingIfNeeded: (s >> 33) % 900 + UInt64(i % 230)); data[2 * i] = UInt8(v & 0xff); data[2 * i + 1] = UInt8(v >> 8) }
        try await a.write(a.fullBox, data)
        // One missing chunk: must read as fill_value (7) over HTTP as on disk (404 → fill).
        try store.delete("1.1.2")
        expected = try await a.read(a.fullBox)
        nginx = try LoopbackServer.nginx(root: root)
    }

    override func tearDown() {
        nginx?.stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    private func fastFetcher(attempts: Int = 8, stats: TransferStats = TransferStats()) -> RemoteFetcher {
        var f = RemoteFetcher(client: HTTPClient(settings: { var s = HTTPSettings(); s.lowSpeedSeconds = 1; s.maxConnections = 4; return s }()), stats: stats)
        f.maxAttempts = attempts; f.baseDelay = 0.02; f.maxDelay = 0.2
        return f
    }

    func testHTTPReadsMatchLocalReads() async throws {
        let a = try await VolumeSource.open(nginx.url + "/vol.zarr/raw")
        XCTAssertEqual(a.shape, shape)
        let full = try await a.read(a.fullBox)
        XCTAssertEqual(full, expected)
        let box = Box([1..<3, 17..<149, 3..<200])
        let part = try await a.read(box)
        XCTAssertEqual(part, cut(expected, shape: shape, box: box, elementSize: 2))
        // A range read of a chunk equals the same bytes of the whole chunk.
        let store = HTTPChunkStore(base: nginx.url + "/vol.zarr/raw")
        let whole = try await store.get("0.0.0")!
        let mid = try await store.get("0.0.0", range: ByteRange(offset: 10, length: 20))
        let tail = try await store.get("0.0.0", range: ByteRange(offset: nil, length: 16))
        XCTAssertEqual(mid, Array(whole[10..<30])); XCTAssertEqual(tail, Array(whole.suffix(16)))
    }

    func testFaultyServerCostsTimeNotData() async throws {
        let proxy = try LoopbackServer.faultProxy(upstream: nginx.url, ["--per-path", "2", "--stall-seconds", "3"])
        defer { proxy.stop() }
        let stats = TransferStats()
        var opts = SourceOptions(); opts.fetcher = fastFetcher(stats: stats)
        let a = try await VolumeSource.open(proxy.url + "/vol.zarr/raw", options: opts)
        let full = try await a.read(a.fullBox)
        XCTAssertEqual(full, expected, "every byte as from a clean read")
        print("fault proxy: \(stats.summary)")
        XCTAssertGreaterThanOrEqual(stats.retries, 20)
        for reason in ["HTTP 503", "HTTP 429", "short body", "timeout"] {
            XCTAssertTrue(stats.retryReasons.keys.contains { $0.contains(reason) || (reason == "short body" && $0.contains("truncated")) }, "saw \(reason): \(stats.retryReasons)")
        }
        XCTAssertEqual(stats.failures, 0)
    }

    func testForbiddenIsAnErrorNotMissing() async throws {
        let proxy = try LoopbackServer.faultProxy(upstream: nginx.url, ["--faults", "", "--forbid", "2.0.1"])
        defer { proxy.stop() }
        var opts = SourceOptions(); opts.fetcher = fastFetcher()
        let a = try await VolumeSource.open(proxy.url + "/vol.zarr/raw", options: opts)
        do {
            _ = try await a.read(a.fullBox)
            XCTFail("a 403 must not read as fill value")
        } catch {
            XCTAssertTrue("\(error)".contains("2.0.1") && "\(error)".contains("403"), "\(error)")
        }
    }

    func testPermanentlyTruncatedChunkEndsInAClearError() async throws {
        let proxy = try LoopbackServer.faultProxy(upstream: nginx.url, ["--faults", "", "--always-truncate", "0.1.1"])
        defer { proxy.stop() }
        let stats = TransferStats()
        var opts = SourceOptions(); opts.fetcher = fastFetcher(attempts: 4, stats: stats)
        let a = try await VolumeSource.open(proxy.url + "/vol.zarr/raw", options: opts)
        do {
            _ = try await a.read(a.fullBox)
            XCTFail("a chunk that stays truncated must not be decoded or zero-filled")
        } catch {
            let s = "\(error)"
            XCTAssertTrue(s.contains(proxy.url + "/vol.zarr/raw/0.1.1") && s.contains("4 attempts"), s)
        }
        XCTAssertEqual(stats.failures, 1)
    }

    func testUnreachableServer() async throws {
        var opts = SourceOptions(); opts.fetcher = fastFetcher(attempts: 3)
        do {
            _ = try await VolumeSource.open("http://127.0.0.1:1/vol.zarr/raw", options: opts)
            XCTFail("expected an error")
        } catch { XCTAssertTrue("\(error)".contains("127.0.0.1:1") && "\(error)".contains("3 attempts"), "\(error)") }
    }

    /// A byte range outside the object (what a corrupt shard index asks for) is one request and a clear error,
    /// not eight retries reported as an outage.
    func testRangeOutsideTheObjectIsNotRetried() async throws {
        let stats = TransferStats()
        let store = HTTPChunkStore(base: nginx.url + "/vol.zarr/raw", fetcher: fastFetcher(stats: stats))
        let size = try await store.get("0.0.0")!.count
        do { _ = try await store.get("0.0.0", range: ByteRange(offset: size - 4, length: 100)); XCTFail("range past the end accepted") }
        catch { XCTAssertTrue("\(error)".contains("has \(size) bytes") && "\(error)".contains("Not retried"), "\(error)") }
        do { _ = try await store.get("0.0.0", range: ByteRange(offset: size + 10, length: 8)); XCTFail("range outside accepted") }
        catch { XCTAssertTrue("\(error)".contains("416"), "\(error)") }
        XCTAssertEqual(stats.requests, 3)
        // Response headers end lines with CRLF, which is one Character in Swift (they were once never split).
        let h = HTTPClient.parseHeaders("HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\nHTTP/1.1 206 Partial\r\nContent-Range: bytes 1-2/3\r\nRetry-After: 7\r\n\r\n")
        XCTAssertEqual(h["content-range"], "bytes 1-2/3"); XCTAssertEqual(h["retry-after"], "7"); XCTAssertNil(h["location"])
    }
}
