/// A chunk's way from array to stored bytes, as Zarr v3 defines it — v2 metadata maps onto the same type:
/// array→array (`transpose`; v2's order "F" is the reversal of the axes), array→bytes (`bytes`: the dtype's byte
/// order), then bytes→bytes codecs in order (compressors, `crc32c`). Sharding is the other array→bytes codec; it
/// changes how chunks map onto stored objects and lives in `ChunkIO`, which runs this pipeline per inner chunk.
public struct CodecPipeline: Sendable {
    /// The transpose's order (encoded axis i is chunk axis order[i]), nil for none.
    public var transpose: [Int]?
    public var dtype: DataType
    public var codecs: [any Codec]

    /// Native-endian C-order chunk (of `shape`) → stored bytes.
    public func encode(_ chunk: [UInt8], shape: [Int]) throws -> [UInt8] {
        var b = chunk
        if let t = transpose { b = permuteAxes(b, shape: shape, order: t, elementSize: dtype.size) }
        if dtype.bigEndian { swapByteOrder(&b, elementSize: dtype.size) }
        for c in codecs { b = try c.encode(b, elementSize: dtype.size) }
        return b
    }

    /// Stored bytes → native-endian C-order chunk of `shape`, its size checked.
    public func decode(_ stored: [UInt8], shape: [Int]) throws -> [UInt8] {
        let size = shape.reduce(1, *) * dtype.size
        var b = stored
        for (i, c) in codecs.enumerated().reversed() {
            b = i == 0 ? try c.decode(b, expectedSize: size) : try c.decode(b, atMost: Self.encodedBound(size, layers: i))
        }
        guard b.count == size else {
            throw CodecError(codecs.isEmpty ? "uncompressed chunk has \(b.count) bytes, expected \(size)"
                                            : "chunk decoded to \(b.count) bytes, expected \(size)")
        }
        if dtype.bigEndian { swapByteOrder(&b, elementSize: dtype.size) }
        if let t = transpose {
            let encodedShape = t.map { shape[$0] }
            b = permuteAxes(b, shape: encodedShape, order: inverse(t), elementSize: dtype.size)
        }
        return b
    }

    /// The most bytes `layers` codecs can turn `size` bytes into: the worst expansion of any supported codec
    /// (zstd's compressBound n + n/256 + 64, deflate's n + n/1000 + 18, lz4's n + n/255 + 20, blosc's + 16, crc32c's
    /// + 4) is well inside n + n/8 + 64 KiB per layer.
    static func encodedBound(_ size: Int, layers: Int) -> Int {
        var n = size
        for _ in 0..<layers { n = n + n / 8 + (64 << 10) }
        return n
    }

    func inverse(_ p: [Int]) -> [Int] {
        var inv = p
        for (i, a) in p.enumerated() { inv[a] = i }
        return inv
    }

    /// The Zarr v3 `codecs` list (without sharding).
    public func zarrV3Codecs() -> [[String: Any]] {
        var list: [[String: Any]] = []
        if let t = transpose { list.append(["name": "transpose", "configuration": ["order": t]]) }
        list.append(["name": "bytes", "configuration": ["endian": dtype.bigEndian ? "big" : "little"]])
        for c in codecs { list.append(c.zarrV3Config(elementSize: dtype.size)) }
        return list
    }
}

/// Reorders the axes of a C-order block: output axis i is input axis `order[i]`.
public func permuteAxes(_ bytes: [UInt8], shape: [Int], order: [Int], elementSize es: Int) -> [UInt8] {
    let n = shape.count
    guard n > 1, order != Array(0..<n) else { return bytes }
    var inStride = [Int](repeating: 1, count: n)
    for d in stride(from: n - 2, through: 0, by: -1) { inStride[d] = inStride[d + 1] * shape[d + 1] }
    let outShape = order.map { shape[$0] }, srcStride = order.map { inStride[$0] }
    var out = [UInt8](repeating: 0, count: bytes.count)
    let total = shape.reduce(1, *)
    var idx = [Int](repeating: 0, count: n)
    bytes.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in
        var s = 0
        for o in 0..<total {
            (dst.baseAddress! + o * es).copyMemory(from: src.baseAddress! + s * es, byteCount: es)
            var d = n - 1
            while d >= 0 {
                idx[d] += 1; s += srcStride[d]
                if idx[d] < outShape[d] { break }
                s -= srcStride[d] * outShape[d]; idx[d] = 0; d -= 1
            }
        }
    } }
    return out
}
