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
    public var order: Order
    public var codec: (any Codec)?
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
                codec: (any Codec)? = nil, separator: String = ".", zarrFormat: Int = 2, sharding: ShardingSpec? = nil,
                dimensionNames: [String]? = nil) {
        self.shape = shape; self.chunks = chunks; self.dtype = dtype; self.fillValue = fillValue
        self.order = order; self.codec = codec; self.separator = separator
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
    /// Chunks per axis (edge chunks count, stored full size).
    public var grid: [Int] { zip(shape, chunks).map { ($0 + $1 - 1) / max($1, 1) } }
    public var chunkElements: Int { chunks.reduce(1, *) }
    public var chunkBytes: Int { chunkElements * dtype.size }

    /// The key of a stored object (a chunk, or a shard when sharded) by its grid index, relative to the array's path.
    public func storedKey(_ index: [Int]) -> String {
        if defaultKeyEncoding { return (["c"] + index.map(String.init)).joined(separator: separator) }
        return index.isEmpty ? "0" : index.map(String.init).joined(separator: separator)
    }

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
        guard separator == "." || separator == "/" else {
            throw VolumeError.malformedMetadata(path: path, reason: "dimension_separator '\(separator)' is not '.' or '/'")
        }
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
        guard let obj = try? JSONSerialization.jsonObject(with: Data(data), options: [.fragmentsAllowed]) as? [String: Any] else {
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
            if let list = filters as? [Any], list.isEmpty {} else {
                throw VolumeError.unsupported(path: path, what: "filters \(filters)")
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
        guard id == "blosc" else { throw VolumeError.unsupported(path: path, what: "compressor '\(id)' (brainmap reads null and blosc)") }
        do {
            return try BloscCodec(cname: c["cname"] as? String ?? "lz4",
                                  clevel: (c["clevel"] as? NSNumber)?.intValue ?? 5,
                                  shuffle: (c["shuffle"] as? NSNumber)?.intValue ?? 1,
                                  blocksize: (c["blocksize"] as? NSNumber)?.intValue ?? 0)
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
        let fill: Any
        if fillValue.isNaN { fill = "NaN" } else if fillValue.isInfinite { fill = fillValue > 0 ? "Infinity" : "-Infinity" }
        else if dtype.kind == .float { fill = fillValue } else { fill = Int64(fillValue) }
        let obj: [String: Any] = [
            "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype.numpy,
            "compressor": codec?.zarrV2Config ?? NSNull(), "fill_value": fill, "order": order.rawValue,
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
    guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw VolumeError.malformedMetadata(path: path, reason: "not a JSON object")
    }
    return o
}
