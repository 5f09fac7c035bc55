/// Zarr v3 `sharding_indexed`: a stored object (shard) holds many inner chunks plus an index of (offset, nbytes)
/// pairs, little-endian uint64, in C order of the inner grid, followed by its CRC-32C; missing chunks are marked
/// with 2^64−1 in both fields. The index sits at the end (default) or the start of the shard.
public struct ShardingSpec: Sendable {
    public enum IndexLocation: String, Sendable { case start, end }
    /// Shape of a shard in elements (the array's outer chunk grid).
    public var shardShape: [Int]
    public var indexLocation: IndexLocation = .end
    /// Whether the index carries a CRC-32C (the `crc32c` index codec).
    public var indexChecksum = true

    public init(shardShape: [Int], indexLocation: IndexLocation = .end, indexChecksum: Bool = true) {
        self.shardShape = shardShape; self.indexLocation = indexLocation; self.indexChecksum = indexChecksum
    }

    /// Inner chunks per shard along each axis.
    public func chunksPerShard(_ inner: [Int]) -> [Int] { zip(shardShape, inner).map { $0 / $1 } }

    public func indexBytes(_ inner: [Int]) -> Int { 16 * chunksPerShard(inner).reduce(1, *) + (indexChecksum ? 4 : 0) }

    /// The shard holding an inner chunk, and the chunk's position (C order) inside it.
    public func locate(_ index: [Int], inner: [Int]) -> (shard: [Int], position: Int) {
        let per = chunksPerShard(inner)
        var pos = 0
        for d in 0..<index.count { pos = pos * per[d] + index[d] % per[d] }
        return (zip(index, per).map { $0 / $1 }, pos)
    }

    /// Parses an index; throws on a bad checksum or entries pointing outside the shard.
    public func parseIndex(_ b: [UInt8], inner: [Int], shardSize: Int?) throws -> [(offset: Int, length: Int)?] {
        let n = chunksPerShard(inner).reduce(1, *)
        guard b.count == indexBytes(inner) else { throw CodecError("shard index has \(b.count) bytes, expected \(indexBytes(inner))") }
        if indexChecksum {
            let stored = UInt32(b[16 * n]) | UInt32(b[16 * n + 1]) << 8 | UInt32(b[16 * n + 2]) << 16 | UInt32(b[16 * n + 3]) << 24
            guard CRC32C.checksum(b[0..<(16 * n)]) == stored else { throw CodecError("shard index checksum (crc32c) does not match: the shard is corrupt") }
        }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
        return try (0..<n).map { i in
            let off = u64(16 * i), len = u64(16 * i + 8)
            if off == .max && len == .max { return nil }
            guard off < UInt64(Int.max / 2), len < UInt64(Int.max / 2), shardSize.map({ Int(off + len) <= $0 }) ?? true else {
                throw CodecError("shard index entry \(i) (offset \(off), \(len) bytes) points outside the shard")
            }
            return (Int(off), Int(len))
        }
    }

    /// Assembles a shard from encoded inner chunks (nil = missing), index at the configured end.
    public func assemble(_ chunks: [[UInt8]?], inner: [Int]) -> [UInt8] {
        let ib = indexBytes(inner)
        var body = [UInt8](), index = [UInt8]()
        var offset = indexLocation == .start ? ib : 0
        func put(_ v: UInt64) { for k in 0..<8 { index.append(UInt8((v >> (8 * UInt64(k))) & 0xff)) } }
        for c in chunks {
            if let c { put(UInt64(offset)); put(UInt64(c.count)); body += c; offset += c.count } else { put(.max); put(.max) }
        }
        if indexChecksum {
            let crc = CRC32C.checksum(index[...])
            for k in 0..<4 { index.append(UInt8((crc >> (8 * UInt32(k))) & 0xff)) }
        }
        return indexLocation == .start ? index + body : body + index
    }

    /// Merges byte ranges that touch into single requests ("adjacent ranges coalesced").
    public static func coalesce(_ ranges: [(offset: Int, length: Int)]) -> [(offset: Int, length: Int)] {
        var out: [(offset: Int, length: Int)] = []
        for r in ranges.sorted(by: { $0.offset < $1.offset }) {
            if let last = out.last, last.offset + last.length >= r.offset {
                out[out.count - 1].length = max(last.offset + last.length, r.offset + r.length) - last.offset
            } else { out.append(r) }
        }
        return out
    }
}
