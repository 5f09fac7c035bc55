import Foundation
import XCTest
@testable import VolumeStore

/// A store that counts gets and can be slowed down, to observe what the cache saves.
final class CountingStore: ChunkStore, @unchecked Sendable {
    let inner: FileChunkStore
    private let lock = NSLock()
    private var count = 0
    var gets: Int { lock.withLock { count } }
    private func bump() { lock.withLock { count += 1 } }
    var delay: UInt64 = 0
    init(_ inner: FileChunkStore) { self.inner = inner }
    var location: String { inner.location }
    func get(_ key: String) async throws -> [UInt8]? {
        bump()
        if delay > 0 { try await Task.sleep(nanoseconds: delay) }
        return try await inner.get(key)
    }
    func get(_ key: String, range: ByteRange) async throws -> [UInt8]? { bump(); return try await inner.get(key, range: range) }
    func put(_ key: String, _ value: [UInt8]) async throws { try await inner.put(key, value) }
}

final class ChunkCacheTests: XCTestCase {
    func makeArray(cache: ChunkCache?) async throws -> (ZarrArray, CountingStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID())").path
        let file = FileChunkStore(root: dir)
        let md = ArrayMetadata(shape: [2, 64, 64], chunks: [1, 32, 32], dtype: .uint8, codec: try BloscCodec())
        let a = try await ZarrArray.create(store: file, path: "", metadata: md)
        try await a.write(a.fullBox, (0..<(2 * 64 * 64)).map { UInt8($0 % 251) })
        let counting = CountingStore(file)
        return (ZarrArray(store: counting, path: "", metadata: md, cache: cache), counting, dir)
    }

    func testRepeatedReadsHitTheCache() async throws {
        let cache = ChunkCache(capacity: 1 << 20)
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await a.read(a.fullBox)
        let second = try await a.read(Box([0..<2, 10..<50, 5..<60]))
        XCTAssertEqual(store.gets, 8, "8 chunks fetched once")
        XCTAssertEqual(second, cut(first, shape: [2, 64, 64], box: Box([0..<2, 10..<50, 5..<60]), elementSize: 1))
        let hits = await cache.hits
        XCTAssertEqual(hits, 8)
    }

    func testConcurrentRequestsForOneChunkAreCoalesced() async throws {
        let cache = ChunkCache(capacity: 1 << 20)
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        store.delay = 50_000_000
        try await withThrowingTaskGroup(of: [UInt8].self) { g in
            for _ in 0..<10 { g.addTask { try await a.readChunk([1, 1, 0]) } }
            var results: [[UInt8]] = []
            for try await r in g { results.append(r) }
            XCTAssertEqual(Set(results.map { $0.count }), [1024])
            XCTAssertEqual(Set(results).count, 1)
        }
        XCTAssertEqual(store.gets, 1)
        let coalesced = await cache.coalesced
        XCTAssertEqual(coalesced, 9)
    }

    func testMemoryStaysWithinCapacity() async throws {
        let cache = ChunkCache(capacity: 3 * 1100)   // room for three 1 KiB chunks
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await a.read(a.fullBox)
        let bytes = await cache.bytes
        XCTAssertLessThanOrEqual(bytes, 3 * 1100)
        let evictions = await cache.evictions
        XCTAssertGreaterThan(evictions, 0)
        // Least recently used went first: re-reading the last chunk is a hit, the first a miss.
        let before = store.gets
        _ = try await a.readChunk([1, 1, 1]); XCTAssertEqual(store.gets, before)
        _ = try await a.readChunk([0, 0, 0]); XCTAssertEqual(store.gets, before + 1)
    }

    func testPrefetchAndWriteThrough() async throws {
        let cache = ChunkCache(capacity: 1 << 20)
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        await a.prefetch(Box([0..<1, 0..<64, 0..<64]))
        for _ in 0..<100 where store.gets < 4 { try await Task.sleep(nanoseconds: 10_000_000) }
        try await Task.sleep(nanoseconds: 20_000_000)
        let before = store.gets
        XCTAssertEqual(before, 4)
        _ = try await a.read(Box([0..<1, 0..<64, 0..<64]))
        XCTAssertEqual(store.gets, before, "prefetched chunks are served from the cache")
        try await a.write(Box([0..<1, 0..<32, 0..<32]), [UInt8](repeating: 42, count: 1024))
        let back = try await a.read(Box([0..<1, 0..<32, 0..<32]))
        XCTAssertEqual(back, [UInt8](repeating: 42, count: 1024), "a write is visible to cached readers")
    }

    /// A load that finishes after a write-through must not put its older value back.
    func testLoadFinishingAfterAWriteKeepsTheWrite() async throws {
        let cache = ChunkCache(capacity: 1 << 20)
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        store.delay = 200_000_000
        let slow = Task { try await a.readChunk([0, 0, 0]) }
        try await Task.sleep(nanoseconds: 50_000_000)
        let newer = [UInt8](repeating: 9, count: 1024)
        try await a.writeChunk([0, 0, 0], newer)
        _ = try await slow.value
        store.delay = 0
        let after = try await a.readChunk([0, 0, 0])
        XCTAssertEqual(after, newer, "the slow load's stale value replaced the write")
    }

    /// An insert too big to keep drops the key's older entry instead of leaving it visible.
    func testOversizeInsertDropsTheOldEntry() async throws {
        let cache = ChunkCache(capacity: 2000)
        await cache.insert("k", [UInt8](repeating: 1, count: 100))
        let small = await cache.peek("k")
        XCTAssertNotNil(small)
        await cache.insert("k", [UInt8](repeating: 2, count: 5000))
        let big = await cache.peek("k")
        XCTAssertNil(big, "a stale value survived an oversize write")
    }

    /// An array made by `create` with a cache writes through the cache its readers use.
    func testCreatedArrayWritesThroughTheReadersCache() async throws {
        let cache = ChunkCache(capacity: 1 << 20)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FileChunkStore(root: dir)
        let md = ArrayMetadata(shape: [1, 32, 32], chunks: [1, 32, 32], dtype: .uint8, codec: try BloscCodec())
        let writer = try await ZarrArray.create(store: store, path: "", metadata: md, cache: cache)
        let reader = try await ZarrArray.open(store: store, path: "").cached(cache)
        let before = try await reader.read(reader.fullBox)
        XCTAssertEqual(before, [UInt8](repeating: 0, count: 1024))
        try await writer.write(writer.fullBox, [UInt8](repeating: 5, count: 1024))
        let after = try await reader.read(reader.fullBox)
        XCTAssertEqual(after, [UInt8](repeating: 5, count: 1024), "the reader saw its stale cached chunk")
    }

    /// Read-ahead keeps at most half the cache in flight; the rest is dropped, counted, and loads when read.
    func testPrefetchIsBounded() async throws {
        let cache = ChunkCache(capacity: 4 * 1100)
        let (a, store, dir) = try await makeArray(cache: cache)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        store.delay = 100_000_000
        await a.prefetch(a.fullBox)   // 8 chunks of 1 KiB
        let dropped = await cache.prefetchDropped
        XCTAssertEqual(dropped, 6, "two 1 KiB loads fit in half of 4.3 KB")
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(store.gets, 2)
        store.delay = 0
        let all = try await a.read(a.fullBox)
        XCTAssertEqual(all.count, 8 * 1024)
    }
}
