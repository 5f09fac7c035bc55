import Foundation

/// OME-Zarr multiscale images: 0.4 (on Zarr v2, `multiscales` in `.zattrs`) and 0.5 (on Zarr v3, under
/// `attributes.ome` of the group's `zarr.json`). Reading picks a level; writing adds a 2×-in-(y, x) mean pyramid
/// above an existing level-0 array and the metadata napari and Neuroglancer use.
public enum OMEZarr {
    /// The multiscales entry of a group, or nil when the group has none (or is not a group).
    public static func multiscales(store: any ChunkStore, path: String = "") async throws -> [String: Any]? {
        if let b = try await store.get(ZarrV2.key(path, ".zattrs")),
           let m = (try jsonObject(b, path: store.location + "/.zattrs")["multiscales"] as? [[String: Any]])?.first { return m }
        if let b = try await store.get(ZarrV2.key(path, "zarr.json")) {
            let o = try jsonObject(b, path: store.location + "/zarr.json")
            if o["node_type"] as? String == "group",
               let m = (((o["attributes"] as? [String: Any])?["ome"] as? [String: Any])?["multiscales"] as? [[String: Any]])?.first { return m }
        }
        return nil
    }

    /// Paths of the levels, finest first.
    public static func levelPaths(_ multiscales: [String: Any], location: String) throws -> [String] {
        guard let ds = multiscales["datasets"] as? [[String: Any]], !ds.isEmpty else {
            throw VolumeError.malformedMetadata(path: location, reason: "OME-Zarr multiscales has no datasets")
        }
        return try ds.map { d in
            guard let p = d["path"] as? String else { throw VolumeError.malformedMetadata(path: location, reason: "a multiscales dataset has no path") }
            return try StoreKey.relative(p, from: "multiscales dataset path", location: location)
        }
    }

    /// Builds levels 1…`levels` of the multiscale group at `path` from its level-0 array "0" (any rank ≥ 2; the last
    /// two axes are y and x), each 2× smaller in y and x by the mean of each 2×2 block (edge blocks average what
    /// exists), chunk row by chunk row; then writes the multiscales metadata (version 0.4 for v2, 0.5 for v3).
    public static func buildPyramid(store: any ChunkStore, path: String, levels: Int, axes: [(name: String, type: String)],
                                    scale: [Double], unit: String = "micrometer", name: String? = nil) async throws {
        var prev = try await ZarrArray.open(store: store, path: ZarrV2.key(path, "0"))
        let rank = prev.shape.count
        guard axes.count == rank, scale.count == rank, rank >= 2 else {
            throw VolumeError.malformedMetadata(path: prev.name, reason: "axes and scale must name all \(rank) axes")
        }
        var paths = ["0"]
        for level in 1...max(1, levels) where levels > 0 {
            var md = prev.metadata
            md.shape = prev.shape.enumerated().map { $0.offset >= rank - 2 ? ($0.element + 1) / 2 : $0.element }
            md.chunks = zip(md.chunks, md.shape).map { min($0, max($1, 1)) }
            md.sharding = nil   // coarser levels are small: plain chunks
            let next = try await ZarrArray.create(store: store, path: ZarrV2.key(path, "\(level)"), metadata: md)
            for idx in next.chunks(overlapping: next.fullBox) {
                let ob = next.chunkBox(idx)
                var ib = ob
                for d in (rank - 2)..<rank {
                    ib.start[d] = 2 * ob.start[d]
                    ib.size[d] = min(2 * ob.size[d], prev.shape[d] - ib.start[d])
                }
                let input = try await prev.read(ib)
                try await next.write(ob, downsample(input, inShape: ib.size, outShape: ob.size, dtype: md.dtype))
            }
            prev = next
            paths.append("\(level)")
            if md.shape[rank - 1] <= 1 && md.shape[rank - 2] <= 1 { break }
        }
        // Level i's pixel covers 2^i level-0 pixels per axis: its centre is (2^i − 1)/2 of them further on.
        let datasets: [[String: Any]] = paths.enumerated().map { i, p in
            var t: [[String: Any]] = [["type": "scale", "scale": scale.enumerated().map { $0.offset >= rank - 2 ? $0.element * Double(1 << i) : $0.element }]]
            if i > 0 { t.append(["type": "translation", "translation": scale.enumerated().map { $0.offset >= rank - 2 ? $0.element * Double((1 << i) - 1) / 2 : 0 }]) }
            return ["path": p, "coordinateTransformations": t]
        }
        let axesJSON: [[String: Any]] = axes.map { a in a.type == "space" ? ["name": a.name, "type": a.type, "unit": unit] : ["name": a.name, "type": a.type] }
        var ms: [String: Any] = ["axes": axesJSON, "datasets": datasets, "name": name ?? (path as NSString).lastPathComponent]
        if prev.metadata.zarrFormat == 3 {
            ms["type"] = "mean"
            try await store.put(ZarrV2.key(path, "zarr.json"), jsonBytes(["zarr_format": 3, "node_type": "group",
                "attributes": ["ome": ["version": "0.5", "multiscales": [ms]]]]))
        } else {
            ms["version"] = "0.4"; ms["type"] = "mean"
            try await store.put(ZarrV2.key(path, ".zgroup"), jsonBytes(["zarr_format": 2]))
            try await store.put(ZarrV2.key(path, ".zattrs"), jsonBytes(["multiscales": [ms]]))
        }
    }

    /// Mean of 2×2 blocks over the last two axes (NaN-aware, rounded to nearest for integer types).
    static func downsample(_ input: [UInt8], inShape: [Int], outShape: [Int], dtype: DataType) -> [UInt8] {
        let rank = inShape.count
        let lead = inShape.dropLast(2).reduce(1, *)
        let ih = inShape[rank - 2], iw = inShape[rank - 1], oh = outShape[rank - 2], ow = outShape[rank - 1]
        var out = [UInt8](repeating: 0, count: lead * oh * ow * dtype.size)
        input.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in
            Reduction.mean.reduce(src, planes: lead, height: ih, width: iw, srcRow: iw, srcPlane: ih * iw,
                                  into: dst, y0: 0, x0: 0, dstRow: ow, dstPlane: oh * ow, dtype: dtype)
        } }
        return out
    }
}

/// Reads element `i` of a native-endian buffer as a Double.
@inline(__always)
func loadElement(_ b: UnsafeRawBufferPointer, _ i: Int, _ t: DataType) -> Double {
    switch (t.kind, t.size) {
    case (.uint, 1): return Double(b.load(fromByteOffset: i, as: UInt8.self))
    case (.uint, 2): return Double(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    case (.uint, 4): return Double(b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
    case (.uint, _): return Double(b.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
    case (.int, 1): return Double(b.load(fromByteOffset: i, as: Int8.self))
    case (.int, 2): return Double(b.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
    case (.int, 4): return Double(b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
    case (.int, _): return Double(b.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
    case (.float, 2): return Double(b.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self))
    case (.float, 4): return Double(b.loadUnaligned(fromByteOffset: 4 * i, as: Float.self))
    default: return b.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)
    }
}

/// Writes a Double into element `i` (rounded half away from zero and clamped for integer types).
@inline(__always)
func storeElement(_ b: UnsafeMutableRawBufferPointer, _ i: Int, _ t: DataType, _ v: Double) {
    let r = v.rounded()
    switch (t.kind, t.size) {
    case (.uint, 1): b.storeBytes(of: UInt8(clamping: Int64(r)), toByteOffset: i, as: UInt8.self)
    case (.uint, 2): b.storeBytes(of: UInt16(clamping: Int64(r)), toByteOffset: 2 * i, as: UInt16.self)
    case (.uint, 4): b.storeBytes(of: UInt32(clamping: Int64(r)), toByteOffset: 4 * i, as: UInt32.self)
    case (.uint, _): b.storeBytes(of: UInt64(max(0, r)), toByteOffset: 8 * i, as: UInt64.self)
    case (.int, 1): b.storeBytes(of: Int8(clamping: Int64(r)), toByteOffset: i, as: Int8.self)
    case (.int, 2): b.storeBytes(of: Int16(clamping: Int64(r)), toByteOffset: 2 * i, as: Int16.self)
    case (.int, 4): b.storeBytes(of: Int32(clamping: Int64(r)), toByteOffset: 4 * i, as: Int32.self)
    case (.int, _): b.storeBytes(of: Int64(r), toByteOffset: 8 * i, as: Int64.self)
    case (.float, 2): b.storeBytes(of: Float16(v), toByteOffset: 2 * i, as: Float16.self)
    case (.float, 4): b.storeBytes(of: Float(v), toByteOffset: 4 * i, as: Float.self)
    default: b.storeBytes(of: v, toByteOffset: 8 * i, as: Double.self)
    }
}
