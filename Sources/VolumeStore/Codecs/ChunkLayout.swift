/// How chunks map onto stored objects — the part of the array→bytes step that decides keys: one object per chunk,
/// or `sharding_indexed` shards of many. It moves *encoded* chunk bytes; `ZarrArray` runs the codec pipeline on
/// either side, so it knows nothing of particular codecs or of sharding.
protocol ChunkLayout: Sendable {
    /// The key of the object holding a chunk (relative to the store root).
    func key(_ index: [Int]) -> String
    /// A chunk as error messages name it.
    func describe(_ index: [Int]) -> String
    /// Chunks grouped into units of work: chunks that are read or written together (one object each).
    func units(_ indices: [[Int]]) -> [[[Int]]]
    /// The encoded bytes of the chunks of one unit (nil where missing).
    func read(_ unit: [[Int]]) async throws -> [([Int], [UInt8]?)]
    /// Stores encoded chunks of one unit; other chunks of the unit keep their stored bytes.
    func write(_ updates: [[Int]: [UInt8]]) async throws
}

/// One stored object per chunk.
struct DirectLayout: ChunkLayout {
    let store: any ChunkStore
    let path: String
    let metadata: ArrayMetadata

    func key(_ index: [Int]) -> String { ZarrV2.key(path, metadata.storedKey(index)) }
    func describe(_ index: [Int]) -> String { key(index) }
    func units(_ indices: [[Int]]) -> [[[Int]]] { indices.map { [$0] } }
    func read(_ unit: [[Int]]) async throws -> [([Int], [UInt8]?)] {
        var out: [([Int], [UInt8]?)] = []
        for idx in unit { out.append((idx, try await store.get(key(idx)))) }
        return out
    }
    func write(_ updates: [[Int]: [UInt8]]) async throws {
        for (idx, bytes) in updates { try await store.put(key(idx), bytes) }
    }
}

/// `sharding_indexed`: inner chunks packed into shards with an index. Shard indexes are cached (one fetch per shard
/// while cached); inner chunks are read by byte ranges, adjacent ones coalesced into one request; a partial write
/// copies the untouched inner chunks' encoded bytes verbatim. One writer per shard: a write holds the store's
/// exclusive lock on the shard, and a second writer is refused, never silently merged.
final class ShardedLayout: ChunkLayout {
    let store: any ChunkStore
    let path: String
    let metadata: ArrayMetadata
    let spec: ShardingSpec
    let indexes = ShardIndexCache(capacity: 256)
    var name: String { store.location + (path.isEmpty ? "" : "/" + path) }

    init(store: any ChunkStore, path: String, metadata: ArrayMetadata) {
        self.store = store; self.path = path; self.metadata = metadata; spec = metadata.sharding!
    }

    func key(_ index: [Int]) -> String { ZarrV2.key(path, metadata.storedKey(spec.locate(index, inner: metadata.chunks).shard)) }

    func describe(_ index: [Int]) -> String { key(index) + "[inner \(index)]" }

    func units(_ indices: [[Int]]) -> [[[Int]]] {
        var order: [[Int]] = [], groups: [[Int]: [[Int]]] = [:]
        for i in indices {
            let shard = spec.locate(i, inner: metadata.chunks).shard
            if groups[shard] == nil { order.append(shard) }
            groups[shard, default: []].append(i)
        }
        return order.map { groups[$0]! }
    }

    /// The shard's index entries (nil: no shard), from the cache or one range request.
    func index(_ key: String) async throws -> [(offset: Int, length: Int)?]? {
        if let hit = await indexes.get(key) { return hit }
        let ib = spec.indexBytes(metadata.chunks)
        let range = spec.indexLocation == .end ? ByteRange(offset: nil, length: ib) : ByteRange(offset: 0, length: ib)
        let bytes: [UInt8]?
        do { bytes = try await store.get(key, range: range) }
        catch let e as VolumeError { throw VolumeError.corruptChunk(array: name, key: key, reason: "cannot read the shard index: \(e)") }
        guard let bytes else { await indexes.put(key, nil); return nil }
        let entries: [(offset: Int, length: Int)?]
        // Entries must lie inside the shard (checked where the store knows its size; over HTTP a range outside
        // the object is refused by the fetcher without retries).
        let shardSize = try? await store.size(key)
        do { entries = try spec.parseIndex(bytes, inner: metadata.chunks, shardSize: shardSize ?? nil) }
        catch let e as CodecError { throw VolumeError.corruptChunk(array: name, key: key, reason: e.reason) }
        await indexes.put(key, entries)
        return entries
    }

    func read(_ unit: [[Int]]) async throws -> [([Int], [UInt8]?)] {
        let key = self.key(unit[0])
        guard let entries = try await index(key) else { return unit.map { ($0, nil) } }
        let wanted = unit.map { entries[spec.locate($0, inner: metadata.chunks).position] }
        let blobs = try await fetch(key, wanted.compactMap { $0 })
        return zip(unit, wanted).map { idx, w in (idx, w.map { blobs[$0.offset]! }) }
    }

    /// The bytes of index entries, keyed by offset, in coalesced range requests.
    private func fetch(_ key: String, _ wanted: [(offset: Int, length: Int)]) async throws -> [Int: [UInt8]] {
        var blobs: [Int: [UInt8]] = [:]
        for r in ShardingSpec.coalesce(wanted) {
            guard let bytes = try await store.get(key, range: ByteRange(offset: r.offset, length: r.length)) else {
                throw VolumeError.corruptChunk(array: name, key: key, reason: "shard vanished while reading it")
            }
            for w in wanted where w.offset >= r.offset && w.offset + w.length <= r.offset + r.length {
                blobs[w.offset] = Array(bytes[(w.offset - r.offset)..<(w.offset - r.offset + w.length)])
            }
        }
        return blobs
    }

    func write(_ updates: [[Int]: [UInt8]]) async throws {
        guard let any = updates.keys.first else { return }
        let key = self.key(any)
        try await store.exclusiveWrite(key) {
            await self.indexes.drop(key)   // another process may have written it since we cached it
            let per = self.spec.chunksPerShard(self.metadata.chunks)
            let shard = self.spec.locate(any, inner: self.metadata.chunks).shard
            var members: [[Int]] = [[]]
            for d in 0..<per.count { members = members.flatMap { p in (0..<per[d]).map { p + [shard[d] * per[d] + $0] } } }
            // Untouched inner chunks keep their encoded bytes, copied without decoding.
            var kept: [Int: [UInt8]] = [:]
            if let entries = try await self.index(key) {
                let untouched = members.enumerated().compactMap { i, m in updates[m] == nil ? entries[i].map { (i, $0) } : nil }
                let blobs = try await self.fetch(key, untouched.map(\.1))
                for (i, e) in untouched { kept[i] = blobs[e.offset] }
            }
            let encoded: [[UInt8]?] = members.enumerated().map { i, m in updates[m] ?? kept[i] }
            let shardBytes = self.spec.assemble(encoded, inner: self.metadata.chunks)
            try await self.store.put(key, shardBytes)
            await self.indexes.drop(key)
        }
    }
}

/// A small LRU of parsed shard indexes.
actor ShardIndexCache {
    let capacity: Int
    private var entries: [String: (value: [(offset: Int, length: Int)?]?, tick: Int)] = [:]
    private var tick = 0
    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: String) -> [(offset: Int, length: Int)?]?? {
        guard let e = entries[key] else { return nil }
        tick += 1; entries[key]!.tick = tick
        return .some(e.value)
    }

    func put(_ key: String, _ value: [(offset: Int, length: Int)?]?) {
        tick += 1
        entries[key] = (value, tick)
        if entries.count > capacity, let oldest = entries.min(by: { $0.value.tick < $1.value.tick })?.key { entries[oldest] = nil }
    }

    func drop(_ key: String) { entries[key] = nil }
}
