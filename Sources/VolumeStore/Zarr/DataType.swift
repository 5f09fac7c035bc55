/// An element type of a stored array: kind, size in bytes and the byte order on disk.
/// In memory brainmap always holds elements in the machine's native (little-endian) order.
public struct DataType: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Character, Sendable { case uint = "u", int = "i", float = "f" }
    public let kind: Kind
    public let size: Int
    public let bigEndian: Bool

    public init(kind: Kind, size: Int, bigEndian: Bool = false) {
        self.kind = kind; self.size = size; self.bigEndian = size == 1 ? false : bigEndian
    }

    public static let uint8 = DataType(kind: .uint, size: 1)
    public static let uint16 = DataType(kind: .uint, size: 2)
    public static let uint32 = DataType(kind: .uint, size: 4)
    public static let int32 = DataType(kind: .int, size: 4)
    public static let float16 = DataType(kind: .float, size: 2)
    public static let float32 = DataType(kind: .float, size: 4)
    public static let float64 = DataType(kind: .float, size: 8)

    /// Parses a NumPy type string as Zarr v2 writes it ("|u1", "<f4", ">i2").
    public init?(numpy s: String) {
        let chars = Array(s)
        guard chars.count >= 3, let kind = Kind(rawValue: chars[1]), let size = Int(String(chars[2...])) else { return nil }
        switch chars[0] {
        case "<", "|", "=": self.init(kind: kind, size: size, bigEndian: false)
        case ">": self.init(kind: kind, size: size, bigEndian: true)
        default: return nil
        }
        let valid: Set<Int> = kind == .float ? [2, 4, 8] : [1, 2, 4, 8]
        if !valid.contains(size) { return nil }
    }

    /// The NumPy type string ("|u1", "<f4", ">i2").
    public var numpy: String {
        "\(size == 1 ? "|" : (bigEndian ? ">" : "<"))\(kind.rawValue)\(size)"
    }

    /// The Zarr v3 data type name ("uint8", "float32", ...).
    public var v3Name: String {
        switch kind {
        case .uint: return "uint\(size * 8)"
        case .int: return "int\(size * 8)"
        case .float: return "float\(size * 8)"
        }
    }

    public init?(v3Name: String) {
        let table: [String: DataType] = [
            "uint8": .init(kind: .uint, size: 1), "uint16": .init(kind: .uint, size: 2),
            "uint32": .init(kind: .uint, size: 4), "uint64": .init(kind: .uint, size: 8),
            "int8": .init(kind: .int, size: 1), "int16": .init(kind: .int, size: 2),
            "int32": .init(kind: .int, size: 4), "int64": .init(kind: .int, size: 8),
            "float16": .init(kind: .float, size: 2), "float32": .init(kind: .float, size: 4), "float64": .init(kind: .float, size: 8),
        ]
        guard let t = table[v3Name] else { return nil }
        self = t
    }

    public var description: String { numpy }

    /// The same type in native byte order.
    public var native: DataType { DataType(kind: kind, size: size, bigEndian: false) }

    /// Element `i` of a native-order buffer of an integer type, as Int64 (uint64 beyond Int64.max wraps).
    @inline(__always)
    public func integer(in raw: UnsafeRawBufferPointer, at i: Int) -> Int64 {
        switch (kind, size) {
        case (.uint, 1): return Int64(raw[i])
        case (.int, 1): return Int64(raw.load(fromByteOffset: i, as: Int8.self))
        case (.uint, 2): return Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        case (.int, 2): return Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
        case (.uint, 4): return Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
        case (.int, 4): return Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
        case (.uint, _): return Int64(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
        default: return raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)
        }
    }

    /// The native-order bytes of one element holding `value` (a JSON fill value, already parsed to Double).
    public func bytes(of value: Double) -> [UInt8] {
        func raw<T>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        switch (kind, size) {
        case (.float, 2): return raw(Float16(Float(value)))
        case (.float, 4): return raw(Float(value))
        case (.float, 8): return raw(value)
        case (.uint, 1): return raw(UInt8(clamping: Int64(value)))
        case (.uint, 2): return raw(UInt16(clamping: Int64(value)))
        case (.uint, 4): return raw(UInt32(clamping: Int64(value)))
        case (.uint, 8): return raw(value >= 9.2e18 ? UInt64(value) : UInt64(clamping: Int64(value)))
        case (.int, 1): return raw(Int8(clamping: Int64(value)))
        case (.int, 2): return raw(Int16(clamping: Int64(value)))
        case (.int, 4): return raw(Int32(clamping: Int64(value)))
        default: return raw(Int64(value))
        }
    }
}

/// Reverses the byte order of every `size`-byte element in place (big-endian storage ↔ native).
public func swapByteOrder(_ bytes: inout [UInt8], elementSize size: Int) {
    guard size > 1 else { return }
    bytes.withUnsafeMutableBufferPointer { p in
        var i = 0
        while i + size <= p.count {
            var a = i, b = i + size - 1
            while a < b { p.swapAt(a, b); a += 1; b -= 1 }
            i += size
        }
    }
}
