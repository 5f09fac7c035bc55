import Foundation

/// A byte-bounded LRU cache of decoded chunks, shared by every array reader of a process. Concurrent requests for
/// one chunk are coalesced into one load; `prefetch` lets the pipeline ask for chunks it will need next.
public actor ChunkCache {
    public let capacity: Int
    private var entries: [String: (value: [UInt8]?, size: Int, tick: UInt64)] = [:]
    private var inflight: [String: Task<[UInt8]?, Error>] = [:]
    private var tick: UInt64 = 0
    public private(set) var bytes = 0
    public private(set) var hits = 0, misses = 0, coalesced = 0, evictions = 0

    /// `capacity` in bytes of decoded data.
    public init(capacity: Int) { self.capacity = max(0, capacity) }

    /// The process-wide cache: 512 MiB unless BRAINMAP_CACHE_BYTES says otherwise.
    public static let shared = ChunkCache(capacity: ProcessInfo.processInfo.environment["BRAINMAP_CACHE_BYTES"].flatMap(Int.init) ?? 512 << 20)

    /// The cached value for `key`, loading it once (whoever asks meanwhile waits for the same load).
    /// A nil value (a missing chunk) is cached too. Errors are not cached.
    public func value(_ key: String, load: @escaping @Sendable () async throws -> [UInt8]?) async throws -> [UInt8]? {
        tick += 1
        if let e = entries[key] {
            hits += 1
            entries[key]!.tick = tick
            return e.value
        }
        if let t = inflight[key] { coalesced += 1; return try await t.value }
        misses += 1
        let t = Task { try await load() }
        inflight[key] = t
        defer { inflight[key] = nil }
        let v = try await t.value
        insert(key, v)
        return v
    }

    /// A cached value without loading (nil: not cached; .some(nil): cached as missing).
    public func peek(_ key: String) -> [UInt8]?? {
        guard let e = entries[key] else { return nil }
        tick += 1; entries[key]!.tick = tick; hits += 1
        return .some(e.value)
    }

    public func insert(_ key: String, _ value: [UInt8]?) {
        let size = (value?.count ?? 0) + 64
        guard size <= capacity else { return }
        tick += 1
        if let old = entries[key] { bytes -= old.size }
        entries[key] = (value, size, tick)
        bytes += size
        if bytes > capacity { evict() }
    }

    /// Drops least-recently used entries until 90% of capacity (batched, so eviction is amortised O(log n)).
    private func evict() {
        let target = capacity / 10 * 9
        for (k, e) in entries.sorted(by: { $0.value.tick < $1.value.tick }) {
            if bytes <= target { break }
            entries[k] = nil; bytes -= e.size; evictions += 1
        }
    }

    /// Starts loads that nobody awaits yet (read-ahead); they land in the cache.
    public func prefetch(_ items: [(String, @Sendable () async throws -> [UInt8]?)]) {
        for (key, load) in items where entries[key] == nil && inflight[key] == nil {
            Task { _ = try? await self.value(key, load: load) }
        }
    }

    public var summary: String {
        "cache \(bytes / (1 << 20)) of \(capacity / (1 << 20)) MiB, \(hits) hits, \(misses) misses, \(coalesced) coalesced, \(evictions) evicted"
    }
}
