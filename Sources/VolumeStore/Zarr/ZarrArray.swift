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
    /// Chunks ↔ stored objects (one per chunk, or shards).
    let layout: any ChunkLayout

    public var shape: [Int] { metadata.shape }
    public var dtype: DataType { metadata.dtype }
    public var name: String { store.location + (path.isEmpty ? "" : "/" + path) }

    public convenience init(store: any ChunkStore, path: String, metadata: ArrayMetadata, concurrency: Int = 4, cache: ChunkCache? = nil) {
        let layout: any ChunkLayout = metadata.sharding != nil ? ShardedLayout(store: store, path: path, metadata: metadata)
                                                               : DirectLayout(store: store, path: path, metadata: metadata)
        self.init(store: store, path: path, metadata: metadata, concurrency: concurrency, cache: cache, layout: layout)
    }

    init(store: any ChunkStore, path: String, metadata: ArrayMetadata, concurrency: Int, cache: ChunkCache?, layout: any ChunkLayout) {
        self.store = store; self.path = path; self.metadata = metadata; self.concurrency = max(1, concurrency); self.cache = cache
        self.layout = layout
    }

    /// The same array read through a chunk cache, `concurrency` chunks at a time (sharing this one's shard indexes).
    public func cached(_ cache: ChunkCache?, concurrency: Int? = nil) -> ZarrArray {
        ZarrArray(store: store, path: path, metadata: metadata, concurrency: concurrency ?? self.concurrency, cache: cache, layout: layout)
    }

    /// The cache key of a chunk: unique per array and chunk index.
    func cacheKey(_ index: [Int]) -> String { name + "#" + index.map(String.init).joined(separator: ",") }

    /// Read-ahead: starts loading the chunks of `box` into the cache without waiting for them, a unit (one
    /// object: a chunk or a shard's chunks) per load.
    public func prefetch(_ box: Box) async {
        guard let cache else { return }
        let groups = layout.units(chunks(overlapping: box)).map { unit in
            (keys: unit.map(cacheKey), bytes: unit.count * metadata.chunkBytes, load: { @Sendable () async throws -> [[UInt8]?] in
                try await self.loadUnit(unit).map(\.1)
            })
        }
        await cache.prefetch(groups)
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
    public func chunkKey(_ index: [Int]) -> String { layout.key(index) }

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

    /// Decodes stored chunk bytes through the codec pipeline to native-endian C order, checking the size.
    public func decodeChunk(_ stored: [UInt8], key: String) throws -> [UInt8] {
        do { return try metadata.pipeline.decode(stored, shape: metadata.chunks) }
        catch let e as CodecError { throw VolumeError.corruptChunk(array: name, key: key, reason: e.reason) }
    }

    /// Encodes a native-endian C-order chunk through the codec pipeline to its stored form.
    public func encodeChunk(_ chunk: [UInt8]) throws -> [UInt8] {
        try metadata.pipeline.encode(chunk, shape: metadata.chunks)
    }

    /// One whole chunk, decoded (fill value where the chunk is missing).
    public func readChunk(_ index: [Int]) async throws -> [UInt8] {
        try await readChunkIfPresent(index) ?? fillChunk()
    }

    /// One whole chunk, decoded, or nil when it was never written.
    public func readChunkIfPresent(_ index: [Int]) async throws -> [UInt8]? {
        guard let cache else { return try await loadUnit([index])[0].1 }
        return try await cache.value(cacheKey(index)) { try await self.loadUnit([index])[0].1 }
    }

    /// Fetches and decodes the chunks of one unit, bypassing the cache.
    func loadUnit(_ unit: [[Int]]) async throws -> [([Int], [UInt8]?)] {
        try await layout.read(unit).map { idx, stored in
            (idx, try stored.map { try decodeChunk($0, key: layout.describe(idx)) })
        }
    }

    /// Writes one whole chunk (native-endian, C order, full chunk size even at the array's edge).
    /// In a sharded array the chunk's shard is rewritten, its other chunks copied as they are.
    public func writeChunk(_ index: [Int], _ chunk: [UInt8]) async throws {
        guard chunk.count == metadata.chunkBytes else {
            throw VolumeError.sizeMismatch(array: name, expected: metadata.chunkBytes, got: chunk.count)
        }
        try await storeUnit([index: chunk])
    }

    /// Encodes and stores whole chunks of one unit of work, writing through to the cache.
    func storeUnit(_ updates: [[Int]: [UInt8]]) async throws {
        guard !updates.isEmpty else { return }
        try await layout.write(try updates.mapValues { try encodeChunk($0) })
        for (idx, c) in updates { await cache?.insert(cacheKey(idx), c) }
    }

    /// The decoded chunks of one unit of work (fill value where missing): cached ones from the cache, the rest in
    /// one load of the unit.
    func readUnit(_ unit: [[Int]]) async throws -> [([Int], [UInt8])] {
        guard let cache else { return try await loadUnit(unit).map { ($0.0, $0.1 ?? fillChunk()) } }
        if unit.count == 1 { return [(unit[0], try await readChunk(unit[0]))] }
        var out: [([Int], [UInt8])] = [], todo: [[Int]] = []
        for idx in unit {
            if let c = await cache.peek(cacheKey(idx)) { out.append((idx, c ?? fillChunk())) } else { todo.append(idx) }
        }
        guard !todo.isEmpty else { return out }
        for (idx, c) in try await loadUnit(todo) {
            await cache.insert(cacheKey(idx), c)
            out.append((idx, c ?? fillChunk()))
        }
        return out
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
        let units = layout.units(chunks(overlapping: box))
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
        let units = layout.units(chunks(overlapping: box))
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
