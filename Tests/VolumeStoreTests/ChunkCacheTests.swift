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
}
