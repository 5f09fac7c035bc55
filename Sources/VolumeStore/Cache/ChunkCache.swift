import Foundation

/// A byte-bounded LRU cache of decoded chunks, shared by the readers of one context (`SourceOptions`). Concurrent
/// requests for one chunk are coalesced into one load; `prefetch` lets a reader ask for chunks it will need next,
/// within a bound on bytes being read ahead.
public actor ChunkCache {
    public let capacity: Int
    private var entries: [String: (value: [UInt8]?, size: Int, tick: UInt64)] = [:]
    private var inflight: [String: Task<[UInt8]?, Error>] = [:]
    /// Keys written (`insert`) while a load of them was in flight: that load's older value must not replace them.
    private var superseded: Set<String> = []
    private var tick: UInt64 = 0
    public private(set) var bytes = 0
    public private(set) var hits = 0, misses = 0, coalesced = 0, evictions = 0
    /// Read-ahead: bytes being loaded that nobody awaits yet, their bound, and what was dropped or failed.
    private var prefetchInFlight = 0
    public private(set) var prefetchDropped = 0, prefetchFailures = 0
    public private(set) var lastPrefetchError: String?

    /// `capacity` in bytes of decoded data.
    public init(capacity: Int) { self.capacity = max(0, capacity) }

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
        // A write-through that landed while we were loading is newer than what we loaded.
        if superseded.remove(key) != nil {
            if let e = entries[key] { return e.value }
            return try await value(key, load: load)   // the newer value was too big to keep: read it again
        }
        store(key, v)
        return v
    }

    /// A cached value without loading (nil: not cached; .some(nil): cached as missing).
    public func peek(_ key: String) -> [UInt8]?? {
        guard let e = entries[key] else { return nil }
        tick += 1; entries[key]!.tick = tick; hits += 1
        return .some(e.value)
    }

    /// Write-through: `value` is now the current content of `key`, replacing any cached or in-flight older value.
    public func insert(_ key: String, _ value: [UInt8]?) {
        if inflight[key] != nil { superseded.insert(key) }
        store(key, value)
    }

    private func store(_ key: String, _ value: [UInt8]?) {
        if let old = entries.removeValue(forKey: key) { bytes -= old.size }
        let size = (value?.count ?? 0) + 64
        guard size <= capacity else { return }   // too big to keep; the stale entry is gone either way
        tick += 1
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

    /// Starts loads that nobody awaits yet (read-ahead); they land in the cache. A group is what one load brings
    /// (one chunk, or the chunks of one shard, in `keys` order) and says how many bytes it will take. Read-ahead may
    /// fill at most half the capacity with loads in flight, so it cannot evict what readers are using now; groups
    /// past that bound are dropped (counted) and load when really read. Readers asking meanwhile for a key of a
    /// group in flight wait for it. A failed read-ahead is counted and remembered, not cached: the real read
    /// retries it and reports the error.
    public func prefetch(_ groups: [(keys: [String], bytes: Int, load: @Sendable () async throws -> [[UInt8]?])]) {
        for g in groups {
            let keys = g.keys.filter { entries[$0] == nil && inflight[$0] == nil }
            guard !keys.isEmpty else { continue }
            guard prefetchInFlight + g.bytes <= capacity / 2 else { prefetchDropped += 1; continue }
            prefetchInFlight += g.bytes
            let all = Task { try await g.load() }
            for k in keys {
                let i = g.keys.firstIndex(of: k)!
                inflight[k] = Task { try await all.value[i] }
            }
            Task {
                do {
                    let values = try await all.value
                    for k in keys where inflight[k] != nil {
                        if superseded.remove(k) == nil { store(k, values[g.keys.firstIndex(of: k)!]) }
                    }
                } catch { prefetchFailed(error) }
                for k in keys { inflight[k] = nil }
                prefetchDone(g.bytes)
            }
        }
    }

    private func prefetchDone(_ n: Int) { prefetchInFlight -= n }
    private func prefetchFailed(_ e: Error) { prefetchFailures += 1; lastPrefetchError = "\(e)" }

    public var summary: String {
        "cache \(bytes / (1 << 20)) of \(capacity / (1 << 20)) MiB, \(hits) hits, \(misses) misses, \(coalesced) coalesced, \(evictions) evicted"
    }
}
