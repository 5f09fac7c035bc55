import Foundation

/// What every chunked-array format agrees on: the grid, the element type, the fill, and how a chunk's bytes are
/// encoded and keyed. Built from a Zarr v2 `.zarray` (and later v3 `zarr.json`); the array reader uses only this.
public struct ArrayMetadata: Sendable {
    public enum Order: String, Sendable { case c = "C", f = "F" }

    public var shape: [Int]
    public var chunks: [Int]
    public var dtype: DataType
    /// The fill value as a number (NaN and ±infinity allowed); missing chunks read as this.
    public var fillValue: Double
    /// The codec pipeline's array→array transpose (v2 order "F" = all axes reversed), nil for none.
    public var transpose: [Int]?
    /// The pipeline's bytes→bytes codecs, in encoding order (v2: the compressor, if any).
    public var codecs: [any Codec]
    /// Zarr v2 `dimension_separator` ("." or "/"), or the separator of v3's chunk key encoding.
    public var separator: String
    /// 2 or 3.
    public var zarrFormat: Int
    /// Zarr v3 "default" chunk keys ("c/0/1/2"); false for v2-style keys ("0.1.2"), in either format.
    public var defaultKeyEncoding: Bool
    /// Zarr v3 sharding: `chunks` is then the inner chunk shape (the unit of reading), shards hold many of them.
    public var sharding: ShardingSpec?
    public var dimensionNames: [String]?

    public init(shape: [Int], chunks: [Int], dtype: DataType, fillValue: Double = 0, order: Order = .c,
                codec: (any Codec)? = nil, codecs: [any Codec]? = nil, transpose: [Int]? = nil, separator: String = ".",
                zarrFormat: Int = 2, sharding: ShardingSpec? = nil, dimensionNames: [String]? = nil) {
        self.shape = shape; self.chunks = chunks; self.dtype = dtype; self.fillValue = fillValue
        self.codecs = codecs ?? codec.map { [$0] } ?? []
        self.transpose = transpose ?? (order == .f && shape.count > 1 ? Array((0..<shape.count).reversed()) : nil)
        self.separator = separator
        self.zarrFormat = zarrFormat; self.defaultKeyEncoding = zarrFormat == 3; self.sharding = sharding
        self.dimensionNames = dimensionNames
    }

    /// A Zarr v3 array description (default "c/" keys with "/").
    public static func v3(shape: [Int], chunks: [Int], dtype: DataType, fillValue: Double = 0, codec: (any Codec)? = nil,
                          sharding: ShardingSpec? = nil, dimensionNames: [String]? = nil) -> ArrayMetadata {
        ArrayMetadata(shape: shape, chunks: chunks, dtype: dtype, fillValue: fillValue, codec: codec, separator: "/",
                      zarrFormat: 3, sharding: sharding, dimensionNames: dimensionNames)
    }

    public var rank: Int { shape.count }

    /// How a chunk becomes stored bytes (and back).
    public var pipeline: CodecPipeline { CodecPipeline(transpose: transpose, dtype: dtype, codecs: codecs) }

    /// The first bytes→bytes codec (v2's compressor).
    public var codec: (any Codec)? { codecs.first }

    /// Zarr v2's memory order: "F" when the transpose reverses every axis.
    public var order: Order { transpose != nil && transpose == Array((0..<rank).reversed()) ? .f : .c }
    /// Chunks per axis (edge chunks count, stored full size).
    public var grid: [Int] { zip(shape, chunks).map { ($0 + $1 - 1) / max($1, 1) } }
    public var chunkElements: Int { chunks.reduce(1, *) }
    public var chunkBytes: Int { chunkElements * dtype.size }

    /// The key of a stored object (a chunk, or a shard when sharded) by its grid index, relative to the array's path.
    public func storedKey(_ index: [Int]) -> String {
        if defaultKeyEncoding { return (["c"] + index.map(String.init)).joined(separator: separator) }
        return index.isEmpty ? "0" : index.map(String.init).joined(separator: separator)
    }

    /// The largest chunk brainmap decodes (c-blosc's own limit too): 2 GiB.
    public static let maxChunkBytes = 2 << 30

    /// The product, or nil on overflow.
    static func product(_ v: [Int]) -> Int? {
        var p = 1
        for x in v {
            let (r, o) = p.multipliedReportingOverflow(by: x)
            if o { return nil }
            p = r
        }
        return p
    }

    static func product(_ v: [Double]) -> Double { v.reduce(1, *) }

    /// The grid of stored objects: shards when sharded, else chunks.
    public var storedShape: [Int] { sharding?.shardShape ?? chunks }

    /// Checks the grid is consistent; `path` names the array in the error.
    func validate(path: String) throws {
        guard !shape.isEmpty || chunks.isEmpty, shape.count == chunks.count else {
            throw VolumeError.malformedMetadata(path: path, reason: "shape \(shape) and chunks \(chunks) differ in rank")
        }
        guard shape.allSatisfy({ $0 >= 0 }), chunks.allSatisfy({ $0 > 0 }) else {
            throw VolumeError.malformedMetadata(path: path, reason: "shape \(shape) must be ≥ 0 and chunks \(chunks) > 0")
        }
        // Sizes are checked with overflow-safe arithmetic before anything is allocated from them.
        guard Self.product(shape + [dtype.size]) != nil else {
            throw VolumeError.malformedMetadata(path: path, reason: "shape \(shape) of \(dtype) overflows 64-bit sizes")
        }
        guard let chunk = Self.product(chunks + [dtype.size]), chunk <= Self.maxChunkBytes else {
            throw VolumeError.unsupported(path: path, what: "chunks \(chunks) of \(dtype): \(Self.product(chunks.map(Double.init)) * Double(dtype.size)) bytes per chunk, over brainmap's limit of \(Self.maxChunkBytes) (2 GiB)")
        }
        guard separator == "." || separator == "/" else {
            throw VolumeError.malformedMetadata(path: path, reason: "dimension_separator '\(separator)' is not '.' or '/'")
        }
        if zarrFormat == 2 {
            guard codecs.count <= 1, codecs.allSatisfy({ $0.zarrV2Config != nil }) else {
                throw VolumeError.unsupported(path: path, what: "Zarr v2 holds one compressor (blosc, zstd, gzip, zlib, lz4); use Zarr v3 for codec chains or crc32c")
            }
            guard transpose == nil || order == .f else {
                throw VolumeError.unsupported(path: path, what: "transpose \(transpose!) in Zarr v2 (only C or F order)")
            }
        }
        if let t = transpose, t.sorted() != Array(0..<rank) {
            throw VolumeError.malformedMetadata(path: path, reason: "transpose order \(t) is not a permutation of the \(rank) axes")
        }
        try validateFill(path: path)
        if let s = sharding {
            guard s.shardShape.count == chunks.count, zip(s.shardShape, chunks).allSatisfy({ $0 > 0 && $0 % $1 == 0 }) else {
                throw VolumeError.malformedMetadata(path: path, reason: "shard shape \(s.shardShape) is not a multiple of the inner chunk shape \(chunks)")
            }
        }
    }
}

// MARK: - Zarr v2 `.zarray`

extension ArrayMetadata {
    /// Parses a Zarr v2 `.zarray` document. `path` names the file in errors.
    public static func zarrV2(json data: [UInt8], path: String) throws -> ArrayMetadata {
        try checkJSONDepth(data, path: path)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(data), options: [.fragmentsAllowed]) as? [String: Any] else {
            _ = try jsonObject(data, path: path)   // says whether it was an HTML page
            throw VolumeError.malformedMetadata(path: path, reason: "not a JSON object")
        }
        func ints(_ k: String) throws -> [Int] {
            guard let a = obj[k] as? [Any], let v = a.map({ ($0 as? NSNumber)?.intValue }) as? [Int] else {
                throw VolumeError.malformedMetadata(path: path, reason: "'\(k)' must be a list of integers")
            }
            return v
        }
        guard (obj["zarr_format"] as? NSNumber)?.intValue == 2 else {
            throw VolumeError.malformedMetadata(path: path, reason: "zarr_format must be 2")
        }
        let shape = try ints("shape"), chunks = try ints("chunks")
        guard let ds = obj["dtype"] as? String else {
            throw VolumeError.malformedMetadata(path: path, reason: "'dtype' must be a NumPy type string such as \"<u2\"")
        }
        guard let dtype = DataType(numpy: ds) else {
            throw VolumeError.unsupported(path: path, what: "dtype \(ds) (supported: u1 u2 u4 u8 i1 i2 i4 i8 f4 f8, either byte order)")
        }
        let orderString = obj["order"] as? String ?? "C"
        guard let order = Order(rawValue: orderString) else {
            throw VolumeError.malformedMetadata(path: path, reason: "order '\(orderString)' is not C or F")
        }
        if let filters = obj["filters"], !(filters is NSNull) {
            // The volume datasets of this field (OME-Zarr images, N5/Janelia exports, BossDB) store compressors only;
            // numcodecs filters (Delta, FixedScaleOffset, …) change values and are refused rather than misread.
            if let list = filters as? [Any], list.isEmpty {} else {
                throw VolumeError.unsupported(path: path, what: "filters \(filters) (brainmap reads arrays without v2 filters)")
            }
        }
        let codec = try codecFromV2(obj["compressor"], path: path)
        let fill = try parseFill(obj["fill_value"], path: path)
        let sep = obj["dimension_separator"] as? String ?? "."
        let m = ArrayMetadata(shape: shape, chunks: chunks, dtype: dtype, fillValue: fill, order: order,
                              codec: codec, separator: sep)
        try m.validate(path: path)
        return m
    }

    static func codecFromV2(_ v: Any?, path: String) throws -> (any Codec)? {
        guard let v, !(v is NSNull) else { return nil }
        guard let c = v as? [String: Any], let id = c["id"] as? String else {
            throw VolumeError.malformedMetadata(path: path, reason: "'compressor' must be null or an object with an 'id'")
        }
        func int(_ k: String, _ d: Int) -> Int { (c[k] as? NSNumber)?.intValue ?? d }
        do {
            switch id {
            case "blosc":
                return try BloscCodec(cname: c["cname"] as? String ?? "lz4", clevel: int("clevel", 5), shuffle: int("shuffle", 1),
                                      blocksize: int("blocksize", 0))
            case "zstd": return try ZstdCodec(level: int("level", 0), checksum: c["checksum"] as? Bool ?? false)
            case "gzip": return try DeflateCodec(.gzip, level: int("level", 5))
            case "zlib": return try DeflateCodec(.zlib, level: int("level", 5))
            case "lz4": return LZ4Codec(acceleration: int("acceleration", 1))
            default:
                throw VolumeError.unsupported(path: path, what: "compressor '\(id)' (brainmap reads blosc, zstd, gzip, zlib, lz4 and none)")
            }
        } catch let e as CodecError {
            throw VolumeError.unsupported(path: path, what: e.reason)
        }
    }

    static func parseFill(_ v: Any?, path: String) throws -> Double {
        switch v {
        case nil, is NSNull: return 0
        case let s as String:
            switch s {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: throw VolumeError.unsupported(path: path, what: "fill_value \"\(s)\"")
            }
        case let n as NSNumber: return n.doubleValue
        default: throw VolumeError.malformedMetadata(path: path, reason: "fill_value must be a number, null, \"NaN\" or \"±Infinity\"")
        }
    }

    /// The `.zarray` document for this metadata.
    public func zarrV2JSON() -> [UInt8] {
        let fill = fillJSON
        let obj: [String: Any] = [
            "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype.numpy,
            "compressor": codecs.first?.zarrV2Config ?? NSNull(), "fill_value": fill, "order": order.rawValue,
            "filters": NSNull(), "dimension_separator": separator,
        ]
        return jsonBytes(obj)
    }
}

/// Pretty, key-sorted JSON for metadata files.
public func jsonBytes(_ obj: Any) -> [UInt8] {
    let d = (try? JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    return [UInt8](d)
}

/// Parses a JSON object document, or throws naming the file.
public func jsonObject(_ bytes: [UInt8], path: String) throws -> [String: Any] {
    try checkJSONDepth(bytes, path: path)
    guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw VolumeError.malformedMetadata(path: path, reason: looksLikeHTML(bytes)
            ? "the server answered with an HTML page, not Zarr metadata: check the URL (a login or error page?)"
            : "not a JSON object")
    }
    return o
}

/// Metadata nests a few levels; a document nested deeper than this is refused before parsing (a parser recursing
/// once per level must not be driven into the stack's end by a hostile file).
let maxJSONDepth = 64

/// Public for the parsers of other modules that read JSON from files (label maps, training states).
public func checkJSONDepth(_ b: [UInt8], path: String) throws {
    var depth = 0, inString = false, escaped = false
    for c in b {
        if inString {
            if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch c {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            depth += 1
            if depth > maxJSONDepth { throw VolumeError.malformedMetadata(path: path, reason: "JSON nested deeper than \(maxJSONDepth) levels") }
        case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
        default: break
        }
    }
}

/// Whether bytes start like an HTML page (what web servers send for wrong URLs and logins).
func looksLikeHTML(_ b: [UInt8]) -> Bool {
    let head = String(decoding: b.prefix(64), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    return head.hasPrefix("<!doctype html") || head.hasPrefix("<html") || head.hasPrefix("<head") || head.hasPrefix("<body")
}
