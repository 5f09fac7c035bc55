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
    /// Zarr v2 `dimension_separator`: "." or "/".
    public var separator: String

    public init(shape: [Int], chunks: [Int], dtype: DataType, fillValue: Double = 0, order: Order = .c,
                codec: (any Codec)? = nil, separator: String = ".") {
        self.shape = shape; self.chunks = chunks; self.dtype = dtype; self.fillValue = fillValue
        self.order = order; self.codec = codec; self.separator = separator
    }

    public var rank: Int { shape.count }
    /// Chunks per axis (edge chunks count, stored full size).
    public var grid: [Int] { zip(shape, chunks).map { ($0 + $1 - 1) / max($1, 1) } }
    public var chunkElements: Int { chunks.reduce(1, *) }
    public var chunkBytes: Int { chunkElements * dtype.size }

    /// The key of a chunk, relative to the array's path.
    public func chunkKey(_ index: [Int]) -> String {
        index.isEmpty ? "0" : index.map(String.init).joined(separator: separator)
    }

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
