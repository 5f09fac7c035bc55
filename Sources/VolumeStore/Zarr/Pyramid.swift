import Foundation

/// A multiscale pyramid over a level-0 array in a local store: level k is level k − 1 halved in y and x (the last
/// two axes; ⌈n/2⌉) by a `Reduction` of each 2×2 window, with level 0's chunk shape, dtype, fill and codec, until a
/// level fits in one chunk. Levels are built chunk by chunk, each from the (up to four) chunks under it one at a
/// time, so memory is two chunks whatever the array's size, and a level-k chunk can be built as soon as the chunks
/// under it are final — which is how the steps build it while they write level 0. Every level-k chunk is written
/// (fill value where nothing is under it), so "a chunk of level ≥ 1 exists" means "it was built"; writes are atomic
/// (the store's temp-and-rename), so a kill never leaves a half chunk.
public struct Pyramid: Sendable {
    public let store: FileChunkStore
    /// Level 0 first.
    public let levels: [ZarrArray]
    public let reduction: Reduction

    public init(store: FileChunkStore, levels: [ZarrArray], reduction: Reduction) {
        self.store = store; self.levels = levels; self.reduction = reduction
    }

    /// The metadata of every level of an array with level-0 metadata `md` (level 0 first). An array whose y/x chunk
    /// sides are odd (a chunk would not split into whole 2×2 windows) or are chunked in y/x as one pixel has level 0 only.
    public static func levelMetadata(_ md: ArrayMetadata) -> [ArrayMetadata] {
        let r = md.shape.count
        guard r >= 2, md.chunks[r - 2] % 2 == 0, md.chunks[r - 1] % 2 == 0 else { return [md] }
        var out = [md]
        while out.last!.shape[r - 2] > md.chunks[r - 2] || out.last!.shape[r - 1] > md.chunks[r - 1] {
            var next = out.last!
            next.shape[r - 2] = (next.shape[r - 2] + 1) / 2
            next.shape[r - 1] = (next.shape[r - 1] + 1) / 2
            out.append(next)
        }
        return out
    }

    /// Writes the `.zarray` (and xarray's `_ARRAY_DIMENSIONS`) of levels 1… at `paths[k]`, replacing what is there.
    public static func createLevels(store: FileChunkStore, paths: [String], metadata: [ArrayMetadata], dimensions: [String]) throws {
        for (p, md) in zip(paths, metadata).dropFirst() { try createLevel(store: store, path: p, metadata: md, dimensions: dimensions) }
    }

    /// One level's (empty) array.
    public static func createLevel(store: FileChunkStore, path: String, metadata: ArrayMetadata, dimensions: [String]) throws {
        try store.putSync(path + "/.zattrs", jsonBytes(["_ARRAY_DIMENSIONS": dimensions]))
        try store.putSync(path + "/.zarray", metadata.zarrV2JSON())
    }

    var rank: Int { levels[0].shape.count }

    /// The chunk index of (z, y, x) chunk coordinates in this array (a leading channel axis is one chunk).
    public func index(z: Int, y: Int, x: Int) -> [Int] { rank == 4 ? [0, z, y, x] : [z, y, x] }

    /// Chunks per side (y, x) of level k.
    func grid(_ k: Int) -> (Int, Int) {
        let md = levels[k].metadata, r = rank
        return ((md.shape[r - 2] + md.chunks[r - 2] - 1) / md.chunks[r - 2], (md.shape[r - 1] + md.chunks[r - 1] - 1) / md.chunks[r - 1])
    }

    /// The chunks of level k − 1 under chunk `index` of level k.
    func children(_ k: Int, _ index: [Int]) -> [[Int]] {
        let (ny, nx) = grid(k - 1), r = rank
        var out: [[Int]] = []
        for dy in 0..<2 { for dx in 0..<2 {
            var c = index
            c[r - 2] = 2 * index[r - 2] + dy; c[r - 1] = 2 * index[r - 1] + dx
            if c[r - 2] < ny && c[r - 1] < nx { out.append(c) }
        } }
        return out
    }

    func parent(_ index: [Int]) -> [Int] {
        var p = index
        p[rank - 2] /= 2; p[rank - 1] /= 2
        return p
    }

    /// Whether chunk `index` of level k ≥ 1 was built.
    public func isBuilt(_ k: Int, _ index: [Int]) -> Bool { store.containsSync(levels[k].chunkKey(index)) }

    /// Builds chunk `index` of level k ≥ 1 from level k − 1 (missing chunks there count as fill) and stores it.
    public func build(_ k: Int, _ index: [Int]) throws {
        let out = levels[k], below = levels[k - 1], md = out.metadata, r = rank
        let cy = md.chunks[r - 2], cx = md.chunks[r - 1]
        let planes = md.chunks.dropLast(2).reduce(1, *)
        var chunk = out.fillChunk()
        for c in children(k, index) {
            guard let stored = try store.getSync(below.chunkKey(c)) else { continue }
            let child = try below.decodeChunk(stored, key: below.chunkKey(c))
            let box = below.chunkBox(c)
            let y0 = (c[r - 2] - 2 * index[r - 2]) * cy / 2, x0 = (c[r - 1] - 2 * index[r - 1]) * cx / 2
            child.withUnsafeBytes { s in chunk.withUnsafeMutableBytes { d in
                reduction.reduce(s, planes: planes, height: box.size[r - 2], width: box.size[r - 1], srcRow: cx, srcPlane: cy * cx,
                                 into: d, y0: y0, x0: x0, dstRow: cx, dstPlane: cy * cx, dtype: md.dtype.native)
            } }
        }
        try store.putSync(out.chunkKey(index), try out.encodeChunk(chunk))
    }

    /// Level-0 chunk `index` is final: builds each chunk above it whose chunks below are all final (level 0:
    /// `isFinal`; above: built), stopping at the first that is not ready. Run after every level-0 chunk, this builds
    /// every level as level 0 is written, each chunk once.
    public func completed(_ index: [Int], isFinal: ([Int]) -> Bool) throws {
        var idx = index
        for k in 1..<levels.count {
            idx = parent(idx)
            guard children(k, idx).allSatisfy({ k == 1 ? isFinal($0) : isBuilt(k - 1, $0) }) else { return }
            try build(k, idx)
        }
    }

    /// Builds the chunks of slice z (every level) whose chunks below are final and that are not built yet (`rebuild`:
    /// every chunk of the slice, built or not — after level 0 of the slice was rewritten).
    public func buildSlice(_ z: Int, rebuild: Bool = false, isFinal: ([Int]) -> Bool = { _ in true }) throws {
        for k in 1..<max(1, levels.count) {
            let (ny, nx) = grid(k)
            for y in 0..<ny { for x in 0..<nx {
                let idx = index(z: z, y: y, x: x)
                if !rebuild && isBuilt(k, idx) { continue }
                guard children(k, idx).allSatisfy({ k == 1 ? isFinal($0) : isBuilt(k - 1, $0) }) else { continue }
                try build(k, idx)
            } }
        }
    }
}
