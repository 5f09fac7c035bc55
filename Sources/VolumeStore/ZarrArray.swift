/// A chunked N-d array in a `ChunkStore`. Serves any box, aligned to chunks or not, by assembling chunks; never loads
/// the whole array. In memory, elements are native-endian and C-ordered whatever the stored order and byte order.
public final class ZarrArray: Sendable {
    public let store: any ChunkStore
    /// The array's key prefix inside the store ("" for a store that is the array itself).
    public let path: String
    public let metadata: ArrayMetadata
    /// How many chunks one region read or write decodes or encodes at once.
    public let concurrency: Int
    /// Decoded chunks are kept here (shared with other readers) when set.
    public let cache: ChunkCache?

    public var shape: [Int] { metadata.shape }
    public var dtype: DataType { metadata.dtype }
    public var name: String { store.location + (path.isEmpty ? "" : "/" + path) }

    public init(store: any ChunkStore, path: String, metadata: ArrayMetadata, concurrency: Int = 4, cache: ChunkCache? = nil) {
        self.store = store; self.path = path; self.metadata = metadata; self.concurrency = max(1, concurrency); self.cache = cache
    }

    /// The same array read through a chunk cache, `concurrency` chunks at a time.
    public func cached(_ cache: ChunkCache?, concurrency: Int? = nil) -> ZarrArray {
        ZarrArray(store: store, path: path, metadata: metadata, concurrency: concurrency ?? self.concurrency, cache: cache)
    }

    /// The cache key of a chunk: unique per array and chunk index.
    func cacheKey(_ index: [Int]) -> String { name + "#" + index.map(String.init).joined(separator: ",") }

    /// Read-ahead: starts loading the chunks of `box` into the cache without waiting for them.
    public func prefetch(_ box: Box) async {
        guard let cache else { return }
        let items = chunks(overlapping: box).map { idx in
            (key: cacheKey(idx), bytes: metadata.chunkBytes, load: { @Sendable in try await self.loadChunk(idx) })
        }
        await cache.prefetch(items)
    }

    /// Opens an existing Zarr v2 (`.zarray`) or v3 (`zarr.json`) array.
    public static func open(store: any ChunkStore, path: String) async throws -> ZarrArray {
        let v2 = ZarrV2.key(path, ".zarray")
        if let doc = try await store.get(v2) {
            return ZarrArray(store: store, path: path, metadata: try ArrayMetadata.zarrV2(json: doc, path: store.location + "/" + v2))
        }
        let v3 = ZarrV2.key(path, "zarr.json")
        if let doc = try await store.get(v3) {
            return ZarrArray(store: store, path: path, metadata: try ArrayMetadata.zarrV3(json: doc, path: store.location + "/" + v3))
        }
        throw VolumeError.notFound(path: store.location + (path.isEmpty ? "" : "/" + path))
    }

    /// Creates (or overwrites the metadata of) an array in the metadata's format; `attributes` go to `.zattrs` (v2)
    /// or into `zarr.json` (v3). Writes go through `cache` (the one its readers use) when given.
    public static func create(store: any ChunkStore, path: String, metadata: ArrayMetadata,
                              attributes: [String: Any]? = nil, cache: ChunkCache? = nil) async throws -> ZarrArray {
        try metadata.validate(path: store.location + "/" + path)
        if metadata.zarrFormat == 3 {
            try await store.put(ZarrV2.key(path, "zarr.json"), metadata.zarrV3JSON(attributes: attributes ?? [:]))
        } else {
            try await store.put(ZarrV2.key(path, ".zarray"), metadata.zarrV2JSON())
            if let attributes { try await store.put(ZarrV2.key(path, ".zattrs"), jsonBytes(attributes)) }
        }
        return ZarrArray(store: store, path: path, metadata: metadata, cache: cache)
    }

    /// The array's attributes (`.zattrs` in v2, `attributes` of `zarr.json` in v3; empty when absent).
    public func attributes() async throws -> [String: Any] {
        let key = ZarrV2.key(path, metadata.zarrFormat == 3 ? "zarr.json" : ".zattrs")
        guard let b = try await store.get(key) else { return [:] }
        let o = try jsonObject(b, path: store.location + "/" + key)
        return metadata.zarrFormat == 3 ? (o["attributes"] as? [String: Any] ?? [:]) : o
    }

    public var fullBox: Box { Box(start: .init(repeating: 0, count: shape.count), size: shape) }

    // MARK: chunks

    /// The key of the object holding a chunk: the chunk itself, or its shard.
    public func chunkKey(_ index: [Int]) -> String {
        guard let s = metadata.sharding else { return ZarrV2.key(path, metadata.storedKey(index)) }
        return ZarrV2.key(path, metadata.storedKey(s.locate(index, inner: metadata.chunks).shard))
    }

    /// The box a chunk covers in array coordinates, clipped to the array (edge chunks are stored full size).
    public func chunkBox(_ index: [Int]) -> Box {
        let start = zip(index, metadata.chunks).map { $0 * $1 }
        let size = (0..<index.count).map { min(metadata.chunks[$0], shape[$0] - start[$0]) }
        return Box(start: start, size: size)
    }

    /// Indices of all chunks overlapping a box, in C order.
    public func chunks(overlapping box: Box) -> [[Int]] {
        let lo = zip(box.start, metadata.chunks).map { $0 / $1 }
        let hi = zip(box.end, metadata.chunks).map { ($0 + $1 - 1) / $1 }
        var out: [[Int]] = []
        guard zip(lo, hi).allSatisfy({ $0 < $1 }) else { return out }
        var idx = lo
        while true {
            out.append(idx)
            var d = idx.count - 1
            while d >= 0 { idx[d] += 1; if idx[d] < hi[d] { break }; idx[d] = lo[d]; d -= 1 }
            if d < 0 { return out }
        }
    }

    /// A full chunk of fill value, native-endian.
    public func fillChunk() -> [UInt8] {
        let e = metadata.dtype.native.bytes(of: metadata.fillValue)
        if e.allSatisfy({ $0 == 0 }) { return [UInt8](repeating: 0, count: metadata.chunkBytes) }
        var out = [UInt8](); out.reserveCapacity(metadata.chunkBytes)
        for _ in 0..<metadata.chunkElements { out.append(contentsOf: e) }
        return out
    }

    /// Decodes stored chunk bytes to native-endian C order, checking the size.
    public func decodeChunk(_ stored: [UInt8], key: String) throws -> [UInt8] {
        var raw: [UInt8]
        if let codec = metadata.codec {
            do { raw = try codec.decode(stored, expectedSize: metadata.chunkBytes) }
            catch let e as CodecError { throw VolumeError.corruptChunk(array: name, key: key, reason: e.reason) }
        } else {
            guard stored.count == metadata.chunkBytes else {
                throw VolumeError.corruptChunk(array: name, key: key,
                    reason: "uncompressed chunk has \(stored.count) bytes, expected \(metadata.chunkBytes)")
            }
            raw = stored
        }
        if metadata.dtype.bigEndian { swapByteOrder(&raw, elementSize: metadata.dtype.size) }
        if metadata.order == .f { raw = transposeLayout(raw, shape: metadata.chunks, elementSize: metadata.dtype.size, toC: true) }
        return raw
    }

    /// Encodes a native-endian C-order chunk to the stored form.
    public func encodeChunk(_ chunk: [UInt8]) throws -> [UInt8] {
        var raw = chunk
        if metadata.order == .f { raw = transposeLayout(raw, shape: metadata.chunks, elementSize: metadata.dtype.size, toC: false) }
        if metadata.dtype.bigEndian { swapByteOrder(&raw, elementSize: metadata.dtype.size) }
        guard let codec = metadata.codec else { return raw }
        return try codec.encode(raw, elementSize: metadata.dtype.size)
    }

    /// One whole chunk, decoded (fill value where the chunk is missing).
    public func readChunk(_ index: [Int]) async throws -> [UInt8] {
        try await readChunkIfPresent(index) ?? fillChunk()
    }

    /// One whole chunk, decoded, or nil when it was never written.
    public func readChunkIfPresent(_ index: [Int]) async throws -> [UInt8]? {
        guard let cache else { return try await loadChunk(index) }
        return try await cache.value(cacheKey(index)) { try await self.loadChunk(index) }
    }

    /// Fetches and decodes one chunk, bypassing the cache.
    func loadChunk(_ index: [Int]) async throws -> [UInt8]? {
        if metadata.sharding != nil { return try await readShardedChunks([index])[0].1 }
        let key = chunkKey(index)
        guard let stored = try await store.get(key) else { return nil }
        return try decodeChunk(stored, key: key)
    }

    /// Inner chunks of one shard (all `indices` must share it), decoded; nil where absent. Reads the shard index,
    /// then the chunks' byte ranges, coalescing adjacent ranges into one request each.
    func readShardedChunks(_ indices: [[Int]]) async throws -> [([Int], [UInt8]?)] {
        let s = metadata.sharding!
        let key = chunkKey(indices[0])
        let ib = s.indexBytes(metadata.chunks)
        let indexRange = s.indexLocation == .end ? ByteRange(offset: nil, length: ib) : ByteRange(offset: 0, length: ib)
        let indexBytes: [UInt8]?
        do { indexBytes = try await store.get(key, range: indexRange) }
        catch let e as VolumeError { throw VolumeError.corruptChunk(array: name, key: key, reason: "cannot read the shard index: \(e)") }
        guard let indexBytes else { return indices.map { ($0, nil) } }
        let entries: [(offset: Int, length: Int)?]
        do { entries = try s.parseIndex(indexBytes, inner: metadata.chunks, shardSize: nil) }
        catch let e as CodecError { throw VolumeError.corruptChunk(array: name, key: key, reason: e.reason) }
        let wanted = indices.map { entries[s.locate($0, inner: metadata.chunks).position] }
        var blobs: [Int: [UInt8]] = [:]   // by offset
        for r in ShardingSpec.coalesce(wanted.compactMap { $0 }) {
            guard let bytes = try await store.get(key, range: ByteRange(offset: r.offset, length: r.length)) else {
                throw VolumeError.corruptChunk(array: name, key: key, reason: "shard vanished while reading it")
            }
            for w in wanted.compactMap({ $0 }) where w.offset >= r.offset && w.offset + w.length <= r.offset + r.length {
                blobs[w.offset] = Array(bytes[(w.offset - r.offset)..<(w.offset - r.offset + w.length)])
            }
        }
        return try zip(indices, wanted).map { idx, w in
            guard let w else { return (idx, nil) }
            return (idx, try decodeChunk(blobs[w.offset]!, key: key + "[inner \(idx)]"))
        }
    }

    /// Writes one whole chunk (native-endian, C order, full chunk size even at the array's edge).
    /// In a sharded array this rewrites the chunk's shard (read, replace, write).
    public func writeChunk(_ index: [Int], _ chunk: [UInt8]) async throws {
        guard chunk.count == metadata.chunkBytes else {
            throw VolumeError.sizeMismatch(array: name, expected: metadata.chunkBytes, got: chunk.count)
        }
        try await storeUnit([index: chunk])
    }

    /// Encodes and stores whole chunks of one unit of work (one chunk, or chunks of one shard), writing through to
    /// the cache.
    func storeUnit(_ updates: [[Int]: [UInt8]]) async throws {
        guard let any = updates.keys.first else { return }
        if metadata.sharding != nil { try await writeShard(containing: any, updates) }
        else { try await store.put(chunkKey(any), try encodeChunk(updates[any]!)) }
        for (idx, c) in updates { await cache?.insert(cacheKey(idx), c) }
    }

    /// The decoded chunks of one unit of work (fill value where missing), through the cache.
    func readUnit(_ unit: [[Int]]) async throws -> [([Int], [UInt8])] {
        if metadata.sharding != nil { return try await readShardUnit(unit) }
        var out: [([Int], [UInt8])] = []
        for idx in unit { out.append((idx, try await readChunk(idx))) }
        return out
    }

    /// Rewrites the shard holding `updates`' chunks: existing inner chunks are kept, the given ones replaced.
    func writeShard(containing any: [Int], _ updates: [[Int]: [UInt8]]) async throws {
        let s = metadata.sharding!
        let per = s.chunksPerShard(metadata.chunks)
        let shard = s.locate(any, inner: metadata.chunks).shard
        var members: [[Int]] = [[]]
        for d in 0..<per.count {
            members = members.flatMap { p in (0..<per[d]).map { p + [shard[d] * per[d] + $0] } }
        }
        let inGrid = members.filter { zip($0, metadata.grid).allSatisfy { $0 < $1 } }
        let missing = inGrid.filter { updates[$0] == nil }
        var existing: [[Int]: [UInt8]] = [:]
        if !missing.isEmpty { for (i, c) in try await readShardedChunks(missing) { if let c { existing[i] = c } } }
        let encoded: [[UInt8]?] = try members.map { m in
            if let c = updates[m] ?? existing[m] { return try encodeChunk(c) }
            return nil
        }
        try await store.put(chunkKey(any), s.assemble(encoded, inner: metadata.chunks))
    }

    // MARK: regions

    private func checkBounds(_ box: Box) throws {
        guard box.rank == shape.count, (0..<box.rank).allSatisfy({ box.start[$0] >= 0 && box.size[$0] >= 0 && box.end[$0] <= shape[$0] }) else {
            throw VolumeError.outOfBounds(array: name, region: box.description, shape: shape)
        }
    }

    /// Reads a box into a native-endian C-order buffer. Chunks are fetched and decoded `concurrency` at a time.
    public func read(_ box: Box) async throws -> [UInt8] {
        try checkBounds(box)
        let es = metadata.dtype.size
        var out = [UInt8](repeating: 0, count: box.count * es)
        let units = workUnits(chunks(overlapping: box))
        try await withThrowingTaskGroup(of: [([Int], [UInt8])].self) { group in
            var next = 0
            func launch() {
                let unit = units[next]; next += 1
                group.addTask { try await self.readUnit(unit) }
            }
            while next < min(concurrency, units.count) { launch() }
            while let done = try await group.next() {
                for (idx, chunk) in done { place(chunk, index: idx, into: &out, box: box) }
                if next < units.count { launch() }
            }
        }
        return out
    }

    /// The chunks of one shard, from the cache where present, the rest in one coalesced fetch.
    private func readShardUnit(_ unit: [[Int]]) async throws -> [([Int], [UInt8])] {
        var out: [([Int], [UInt8])] = [], todo: [[Int]] = []
        for idx in unit {
            if let c = await cache?.peek(cacheKey(idx)) { out.append((idx, c ?? fillChunk())) } else { todo.append(idx) }
        }
        guard !todo.isEmpty else { return out }
        for (idx, c) in try await readShardedChunks(todo) {
            await cache?.insert(cacheKey(idx), c)
            out.append((idx, c ?? fillChunk()))
        }
        return out
    }

    /// Chunks grouped into units of work: one chunk each, or all chunks of one shard (read or written together).
    func workUnits(_ indices: [[Int]]) -> [[[Int]]] {
        guard let s = metadata.sharding else { return indices.map { [$0] } }
        var order: [[Int]] = [], groups: [[Int]: [[Int]]] = [:]
        for i in indices {
            let shard = s.locate(i, inner: metadata.chunks).shard
            if groups[shard] == nil { order.append(shard) }
            groups[shard, default: []].append(i)
        }
        return order.map { groups[$0]! }
    }

    private func place(_ chunk: [UInt8], index: [Int], into out: inout [UInt8], box: Box) {
        let cb = chunkBox(index)
        guard let part = cb.intersection(box) else { return }
        let es = metadata.dtype.size
        chunk.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                copyBlock(from: src.baseAddress!, shape: metadata.chunks, at: zip(part.start, cb.start).map { $0 - $1 },
                          to: dst.baseAddress!, shape: box.size, at: zip(part.start, box.start).map { $0 - $1 },
                          extent: part.size, elementSize: es)
            }
        }
    }

    /// Writes a native-endian C-order buffer into a box. Chunks only partly covered are read, merged and rewritten.
    /// Concurrent writers must not touch the same chunk.
    public func write(_ box: Box, _ data: [UInt8]) async throws {
        try checkBounds(box)
        let es = metadata.dtype.size
        guard data.count == box.count * es else { throw VolumeError.sizeMismatch(array: name, expected: box.count * es, got: data.count) }
        let units = workUnits(chunks(overlapping: box))
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                let unit = units[next]; next += 1
                group.addTask {
                    // Chunks only partly covered by the box start from their current contents.
                    let partial = unit.filter { idx in
                        let cb = self.chunkBox(idx)
                        return !(box.contains(cb) && cb.size == self.metadata.chunks)
                    }
                    var current: [[Int]: [UInt8]] = [:]
                    if !partial.isEmpty { for (i, c) in try await self.readUnit(partial) { current[i] = c } }
                    var updates: [[Int]: [UInt8]] = [:]
                    for idx in unit {
                        var chunk = current[idx] ?? [UInt8](repeating: 0, count: self.metadata.chunkBytes)
                        let cb = self.chunkBox(idx), part = cb.intersection(box)!
                        data.withUnsafeBytes { src in
                            chunk.withUnsafeMutableBytes { dst in
                                copyBlock(from: src.baseAddress!, shape: box.size, at: zip(part.start, box.start).map { $0 - $1 },
                                          to: dst.baseAddress!, shape: self.metadata.chunks, at: zip(part.start, cb.start).map { $0 - $1 },
                                          extent: part.size, elementSize: es)
                            }
                        }
                        updates[idx] = chunk
                    }
                    try await self.storeUnit(updates)
                }
            }
            while next < min(concurrency, units.count) { launch() }
            while try await group.next() != nil { if next < units.count { launch() } }
        }
    }
}

/// Zarr v2 key conventions.
public enum ZarrV2 {
    public static func key(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "/" + name }
}
