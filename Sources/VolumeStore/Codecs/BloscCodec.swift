import CBlosc

/// Blosc 1 compression, as numcodecs' `Blosc` writes it. Only the `_ctx` entry points are used: they keep no global
/// state, so many tasks may compress and decompress at once.
public struct BloscCodec: Codec, Equatable {
    public static let compressors = ["lz4", "lz4hc", "blosclz", "zstd", "zlib"]
    public var cname: String
    public var clevel: Int
    /// 0 none, 1 byte shuffle, 2 bit shuffle, -1 automatic (bit shuffle for 1-byte elements, else byte shuffle).
    public var shuffle: Int
    /// Bytes per block; 0 lets blosc choose.
    public var blocksize: Int

    public init(cname: String = "lz4", clevel: Int = 5, shuffle: Int = 1, blocksize: Int = 0) throws {
        guard Self.compressors.contains(cname) else {
            throw CodecError("blosc compressor '\(cname)' is not one of \(Self.compressors.joined(separator: ", "))")
        }
        guard (0...9).contains(clevel) else { throw CodecError("blosc clevel \(clevel) is outside 0...9") }
        guard (-1...2).contains(shuffle) else { throw CodecError("blosc shuffle \(shuffle) is not -1, 0, 1 or 2") }
        guard blocksize >= 0 else { throw CodecError("blosc blocksize \(blocksize) is negative") }
        self.cname = cname; self.clevel = clevel; self.shuffle = shuffle; self.blocksize = blocksize
    }

    public var zarrV2Config: [String: Any]? {
        ["id": "blosc", "cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": blocksize]
    }

    public func zarrV3Config(elementSize: Int) -> [String: Any] {
        let names = ["noshuffle", "shuffle", "bitshuffle"]
        return ["name": "blosc", "configuration": [
            "cname": cname, "clevel": clevel, "shuffle": names[shuffle == -1 ? (elementSize == 1 ? 2 : 1) : shuffle],
            "typesize": elementSize, "blocksize": blocksize]]
    }

    public func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8] {
        let typesize = max(1, min(elementSize, 255))
        let doshuffle: Int32 = shuffle == -1 ? (typesize == 1 ? 2 : 1) : Int32(shuffle)
        var out = [UInt8](repeating: 0, count: raw.count + Int(BLOSC_MAX_OVERHEAD))
        let n = raw.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                blosc_compress_ctx(Int32(clevel), doshuffle, typesize, raw.count, src.baseAddress, dst.baseAddress,
                                   dst.count, cname, blocksize, 1)
            }
        }
        guard n > 0 else { throw CodecError("blosc compression failed (code \(n))") }
        out.removeLast(out.count - Int(n))
        return out
    }

    public func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8] {
        try Self.decodeFrame(stored, expectedSize: expectedSize ?? BloscHeader(stored).nbytes)
    }

    /// Inside a chain the header's decoded size is all there is: a claim over what the chunk can hold is refused
    /// before it is allocated.
    public func decode(_ stored: [UInt8], atMost limit: Int) throws -> [UInt8] {
        let header = try BloscHeader(stored)
        guard header.nbytes <= limit else {
            throw CodecError("blosc header says \(header.nbytes) decoded bytes, more than this chunk's encoding can hold (\(limit)): corrupt")
        }
        return try Self.decodeFrame(stored, expectedSize: header.nbytes)
    }

    /// Validates a blosc frame's 16-byte header against what the caller expects, then decodes it.
    /// Also used for BossDB cutouts, which are blosc frames too.
    public static func decodeFrame(_ stored: [UInt8], expectedSize: Int) throws -> [UInt8] {
        let header = try BloscHeader(stored)
        guard header.nbytes == expectedSize else {
            throw CodecError("blosc header says \(header.nbytes) decoded bytes, expected \(expectedSize)")
        }
        guard header.cbytes == stored.count else {
            throw CodecError("blosc header says \(header.cbytes) compressed bytes but the chunk holds \(stored.count) (truncated or padded)")
        }
        var out = [UInt8](repeating: 0, count: expectedSize)
        if expectedSize == 0 { return out }
        let n = stored.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                blosc_decompress_ctx(src.baseAddress, dst.baseAddress, dst.count, 1)
            }
        }
        guard n == expectedSize else { throw CodecError("blosc decompression failed (code \(n)): the data is corrupt") }
        return out
    }
}

/// The fixed 16-byte header that starts every blosc 1 frame.
public struct BloscHeader: Sendable {
    public let version: UInt8
    public let flags: UInt8
    public let typesize: Int
    public let nbytes: Int
    public let blocksize: Int
    public let cbytes: Int

    public init(_ b: [UInt8]) throws {
        guard b.count >= 16 else { throw CodecError("\(b.count) bytes is shorter than a blosc header (16)") }
        func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
        version = b[0]; flags = b[2]; typesize = Int(b[3])
        nbytes = u32(4); blocksize = u32(8); cbytes = u32(12)
        guard version >= 1 && version <= UInt8(BLOSC_VERSION_FORMAT) else {
            throw CodecError("not a blosc frame (format version byte \(version))")
        }
        guard cbytes >= 16, typesize >= 1 else { throw CodecError("blosc header is inconsistent (cbytes \(cbytes), typesize \(typesize))") }
    }
}
