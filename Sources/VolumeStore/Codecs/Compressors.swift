import CLZ4
import CZlib
import CZstd

/// Zstandard (libzstd), as numcodecs' `Zstd` (v2 `zstd`) and Zarr v3's `zstd` codec write it: one frame per chunk.
/// zarr-python 3's default compressor, for v2 and v3 alike.
public struct ZstdCodec: Codec, Equatable {
    public var level: Int
    public var checksum: Bool
    public init(level: Int = 0, checksum: Bool = false) throws {
        guard (-131072...22).contains(level) else { throw CodecError("zstd level \(level) is outside -131072...22") }
        self.level = level; self.checksum = checksum
    }

    public var zarrV2Config: [String: Any]? { ["id": "zstd", "level": level, "checksum": checksum] }
    public func zarrV3Config(elementSize: Int) -> [String: Any] {
        ["name": "zstd", "configuration": ["level": level, "checksum": checksum]]
    }

    public func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw CodecError("zstd: out of memory") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level))
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum ? 1 : 0)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(raw.count))
        let n = out.withUnsafeMutableBytes { o in raw.withUnsafeBytes { i in
            ZSTD_compress2(cctx, o.baseAddress, o.count, i.baseAddress, i.count)
        } }
        guard ZSTD_isError(n) == 0 else { throw CodecError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    public func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8] {
        let declared = stored.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared == ZSTD_CONTENTSIZE_ERROR { throw CodecError("not a zstd frame (bad magic or truncated header)") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN, let e = expectedSize, declared != UInt64(e) {
            throw CodecError("zstd frame holds \(declared) bytes, expected \(e)")
        }
        // The size to decode into is what the pipeline expects; without it the frame's declared size is not trusted
        // for an allocation (a few hostile bytes may declare gigabytes): stream, growing with real output.
        guard let size = expectedSize else { return try stream(stored) }
        guard size <= maxDecodedBytes else { throw CodecError("zstd frame would decode to \(declared) bytes, over the \(maxDecodedBytes)-byte limit") }
        var out = [UInt8](repeating: 0, count: size)
        let n = out.withUnsafeMutableBytes { o in stored.withUnsafeBytes { i in
            ZSTD_decompress(o.baseAddress, o.count, i.baseAddress, i.count)
        } }
        guard ZSTD_isError(n) == 0 else { throw CodecError("zstd: \(String(cString: ZSTD_getErrorName(n))) (corrupt or truncated chunk)") }
        guard n == size else { throw CodecError("zstd frame decoded to \(n) bytes, expected \(size)") }
        return out
    }

    /// Frames without a content size (streamed writers): decode in steps, up to the limit.
    private func stream(_ stored: [UInt8]) throws -> [UInt8] {
        guard let d = ZSTD_createDStream() else { throw CodecError("zstd: out of memory") }
        defer { ZSTD_freeDStream(d) }
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 1 << 20)
        try stored.withUnsafeBytes { i in
            var input = ZSTD_inBuffer(src: i.baseAddress, size: i.count, pos: 0)
            while true {
                let r = buf.withUnsafeMutableBytes { o -> Int in
                    var output = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                    let r = ZSTD_decompressStream(d, &output, &input)
                    if ZSTD_isError(r) != 0 { return -1 }
                    out.append(contentsOf: o.prefix(output.pos))
                    return r
                }
                guard r >= 0 else { throw CodecError("zstd: corrupt or truncated chunk") }
                guard out.count <= maxDecodedBytes else { throw CodecError("zstd chunk decodes past the \(maxDecodedBytes)-byte limit") }
                if r == 0 { return }
                if input.pos == input.size && r > 0 { throw CodecError("zstd: truncated chunk") }
            }
        }
        return out
    }
}

/// DEFLATE through zlib: `gzip` (gzip framing; numcodecs `GZip`, Zarr v3 `gzip`) or `zlib` (zlib framing; numcodecs
/// `Zlib`, v2 only) — what Janelia/N5-heritage data often carries.
public struct DeflateCodec: Codec, Equatable {
    public enum Framing: String, Sendable { case gzip, zlib }
    public var framing: Framing
    public var level: Int
    public init(_ framing: Framing, level: Int = 5) throws {
        guard (0...9).contains(level) else { throw CodecError("\(framing.rawValue) level \(level) is outside 0...9") }
        self.framing = framing; self.level = level
    }

    public var zarrV2Config: [String: Any]? { ["id": framing.rawValue, "level": level] }
    public func zarrV3Config(elementSize: Int) -> [String: Any] { ["name": framing.rawValue, "configuration": ["level": level]] }

    public func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8] {
        var s = z_stream()
        guard bm_deflate_init(&s, Int32(level), framing == .gzip ? 31 : 15) == Z_OK else { throw CodecError("\(framing.rawValue): cannot start deflate") }
        defer { deflateEnd(&s) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, uLong(raw.count))) + 32)
        let rc = raw.withUnsafeBytes { i in out.withUnsafeMutableBytes { o -> Int32 in
            s.next_in = UnsafeMutablePointer(mutating: i.bindMemory(to: Bytef.self).baseAddress)
            s.avail_in = uInt(i.count)
            s.next_out = o.bindMemory(to: Bytef.self).baseAddress
            s.avail_out = uInt(o.count)
            return deflate(&s, Z_FINISH)
        } }
        guard rc == Z_STREAM_END else { throw CodecError("\(framing.rawValue): deflate failed (\(rc))") }
        out.removeSubrange(Int(s.total_out)...)
        return out
    }

    public func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8] {
        var s = z_stream()
        guard bm_inflate_init(&s, framing == .gzip ? 31 : 15) == Z_OK else { throw CodecError("\(framing.rawValue): cannot start inflate") }
        defer { inflateEnd(&s) }
        var out = [UInt8](repeating: 0, count: expectedSize ?? max(1 << 16, 4 * stored.count))
        var produced = 0
        try stored.withUnsafeBytes { i in
            s.next_in = UnsafeMutablePointer(mutating: i.bindMemory(to: Bytef.self).baseAddress)
            s.avail_in = uInt(i.count)
            while true {
                if produced == out.count {
                    guard expectedSize == nil, out.count < maxDecodedBytes else {
                        throw CodecError("\(framing.rawValue) chunk decodes to more than the expected \(out.count) bytes")
                    }
                    out += [UInt8](repeating: 0, count: out.count)
                }
                let rc = out.withUnsafeMutableBytes { o -> Int32 in
                    s.next_out = o.bindMemory(to: Bytef.self).baseAddress! + produced
                    s.avail_out = uInt(o.count - produced)
                    let rc = inflate(&s, Z_NO_FLUSH)
                    produced = o.count - Int(s.avail_out)
                    return rc
                }
                if rc == Z_STREAM_END { return }
                guard rc == Z_OK || (rc == Z_BUF_ERROR && produced == out.count) else {
                    throw CodecError("\(framing.rawValue): corrupt or truncated chunk (zlib \(rc))")
                }
            }
        }
        if let e = expectedSize, produced != e { throw CodecError("\(framing.rawValue) chunk decoded to \(produced) bytes, expected \(e)") }
        out.removeSubrange(produced...)
        return out
    }
}

/// LZ4 as numcodecs' `LZ4` frames it (Zarr v2 `lz4`): a 4-byte little-endian decoded length, then one LZ4 block.
public struct LZ4Codec: Codec, Equatable {
    public var acceleration: Int
    public init(acceleration: Int = 1) { self.acceleration = max(1, acceleration) }

    public var zarrV2Config: [String: Any]? { ["id": "lz4", "acceleration": acceleration] }
    public func zarrV3Config(elementSize: Int) -> [String: Any] {
        ["name": "numcodecs.lz4", "configuration": ["acceleration": acceleration]]
    }

    public func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8] {
        guard raw.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw CodecError("lz4: chunk of \(raw.count) bytes is over LZ4's limit") }
        let bound = Int(LZ4_compressBound(Int32(raw.count)))
        var out = [UInt8](repeating: 0, count: 4 + bound)
        let n = raw.count
        for k in 0..<4 { out[k] = UInt8((n >> (8 * k)) & 0xff) }
        let written = out.withUnsafeMutableBytes { o in raw.withUnsafeBytes { i in
            LZ4_compress_fast(i.bindMemory(to: CChar.self).baseAddress, o.bindMemory(to: CChar.self).baseAddress! + 4,
                              Int32(n), Int32(bound), Int32(acceleration))
        } }
        guard written > 0 || n == 0 else { throw CodecError("lz4: compression failed") }
        out.removeSubrange((4 + Int(written))...)
        return out
    }

    public func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8] {
        guard stored.count >= 4 else { throw CodecError("lz4 chunk of \(stored.count) bytes has no length header (truncated)") }
        let n = (0..<4).reduce(0) { $0 | Int(stored[$1]) << (8 * $1) }
        if let e = expectedSize, n != e { throw CodecError("lz4 header says \(n) bytes, expected \(e)") }
        // LZ4 cannot expand more than ~255×: a larger claim is corruption, refused before allocating it.
        guard n <= min(maxDecodedBytes, 255 * (stored.count - 4) + 64) else {
            throw CodecError("lz4 header says \(n) decoded bytes from \(stored.count - 4) compressed: corrupt")
        }
        var out = [UInt8](repeating: 0, count: n)
        let got = out.withUnsafeMutableBytes { o in stored.withUnsafeBytes { i in
            LZ4_decompress_safe(i.bindMemory(to: CChar.self).baseAddress! + 4, o.bindMemory(to: CChar.self).baseAddress,
                                Int32(stored.count - 4), Int32(n))
        } }
        guard got == Int32(n) else { throw CodecError("lz4: corrupt or truncated chunk") }
        return out
    }
}

/// Zarr v3 `crc32c`: appends the CRC-32C of the bytes (little-endian); decoding checks and strips it.
public struct CRC32CCodec: Codec, Equatable {
    public init() {}
    public var zarrV2Config: [String: Any]? { nil }
    public func zarrV3Config(elementSize: Int) -> [String: Any] { ["name": "crc32c"] }

    public func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8] {
        let c = CRC32C.checksum(raw[...])
        return raw + (0..<4).map { UInt8((c >> (8 * UInt32($0))) & 0xff) }
    }

    public func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8] {
        guard stored.count >= 4 else { throw CodecError("crc32c: chunk of \(stored.count) bytes has no checksum (truncated)") }
        let body = stored.count - 4
        let want = (0..<4).reduce(UInt32(0)) { $0 | UInt32(stored[body + $1]) << (8 * UInt32($1)) }
        guard CRC32C.checksum(stored[..<body]) == want else { throw CodecError("crc32c checksum does not match: the chunk is corrupt") }
        return Array(stored[..<body])
    }
}

/// No decoded chunk may be larger than this (a guard against decompression bombs in untrusted data): brainmap's
/// chunk limit, 2 GiB.
let maxDecodedBytes = ArrayMetadata.maxChunkBytes
