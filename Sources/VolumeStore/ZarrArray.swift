/// A chunked N-d array in a `ChunkStore`. Serves any box, aligned to chunks or not, by assembling chunks; never loads
/// the whole array. In memory, elements are native-endian and C-ordered whatever the stored order and byte order.
public final class ZarrArray: Sendable {
    public let store: any ChunkStore
    /// The array's key prefix inside the store ("" for a store that is the array itself).
    public let path: String
    public let metadata: ArrayMetadata
    /// How many chunks one region read or write decodes or encodes at once.
    public let concurrency: Int

    public var shape: [Int] { metadata.shape }
    public var dtype: DataType { metadata.dtype }
    public var name: String { store.location + (path.isEmpty ? "" : "/" + path) }

    public init(store: any ChunkStore, path: String, metadata: ArrayMetadata, concurrency: Int = 4) {
        self.store = store; self.path = path; self.metadata = metadata; self.concurrency = max(1, concurrency)
    }

    /// Opens an existing Zarr v2 array.
    public static func open(store: any ChunkStore, path: String) async throws -> ZarrArray {
        let key = ZarrV2.key(path, ".zarray")
        guard let doc = try await store.get(key) else {
            throw VolumeError.notFound(path: store.location + "/" + path)
        }
        let md = try ArrayMetadata.zarrV2(json: doc, path: store.location + "/" + key)
        return ZarrArray(store: store, path: path, metadata: md)
    }

    /// Creates (or overwrites the metadata of) a Zarr v2 array; `attributes` go to `.zattrs`.
    public static func create(store: any ChunkStore, path: String, metadata: ArrayMetadata,
                              attributes: [String: Any]? = nil) async throws -> ZarrArray {
        try metadata.validate(path: store.location + "/" + path)
        try await store.put(ZarrV2.key(path, ".zarray"), metadata.zarrV2JSON())
        if let attributes { try await store.put(ZarrV2.key(path, ".zattrs"), jsonBytes(attributes)) }
        return ZarrArray(store: store, path: path, metadata: metadata)
    }

    /// The array's `.zattrs` (empty when absent).
    public func attributes() async throws -> [String: Any] {
        let key = ZarrV2.key(path, ".zattrs")
        guard let b = try await store.get(key) else { return [:] }
        return try jsonObject(b, path: store.location + "/" + key)
    }

    public var fullBox: Box { Box(start: .init(repeating: 0, count: shape.count), size: shape) }

    // MARK: chunks

    public func chunkKey(_ index: [Int]) -> String { ZarrV2.key(path, metadata.chunkKey(index)) }

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
        let key = chunkKey(index)
        guard let stored = try await store.get(key) else { return nil }
        return try decodeChunk(stored, key: key)
    }

    /// Writes one whole chunk (native-endian, C order, full chunk size even at the array's edge).
    public func writeChunk(_ index: [Int], _ chunk: [UInt8]) async throws {
        guard chunk.count == metadata.chunkBytes else {
            throw VolumeError.sizeMismatch(array: name, expected: metadata.chunkBytes, got: chunk.count)
        }
        try await store.put(chunkKey(index), try encodeChunk(chunk))
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
        let indices = chunks(overlapping: box)
        try await withThrowingTaskGroup(of: ([Int], [UInt8]).self) { group in
            var next = 0
            func launch() {
                let idx = indices[next]; next += 1
                group.addTask { (idx, try await self.readChunk(idx)) }
            }
            while next < min(concurrency, indices.count) { launch() }
            while let (idx, chunk) = try await group.next() {
                place(chunk, index: idx, into: &out, box: box)
                if next < indices.count { launch() }
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
        let indices = chunks(overlapping: box)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                let idx = indices[next]; next += 1
                group.addTask {
                    let cb = self.chunkBox(idx)
                    let part = cb.intersection(box)!
                    var chunk = part == cb && cb.size == self.metadata.chunks
                        ? [UInt8](repeating: 0, count: self.metadata.chunkBytes)
                        : try await self.readChunk(idx)
                    data.withUnsafeBytes { src in
                        chunk.withUnsafeMutableBytes { dst in
                            copyBlock(from: src.baseAddress!, shape: box.size, at: zip(part.start, box.start).map { $0 - $1 },
                                      to: dst.baseAddress!, shape: self.metadata.chunks, at: zip(part.start, cb.start).map { $0 - $1 },
                                      extent: part.size, elementSize: es)
                        }
                    }
                    try await self.writeChunk(idx, chunk)
                }
            }
            while next < min(concurrency, indices.count) { launch() }
            while try await group.next() != nil { if next < indices.count { launch() } }
        }
    }
}

/// Zarr v2 key conventions.
public enum ZarrV2 {
    public static func key(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "/" + name }
}
