/// Turns a chunk's raw element bytes into the bytes stored under its key, and back.
/// `decode` must check that what it produces has exactly `expectedSize` bytes and throw otherwise.
public protocol Codec: Sendable {
    func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8]
    func decode(_ stored: [UInt8], expectedSize: Int) throws -> [UInt8]
    /// The codec's Zarr v2 `compressor` JSON object.
    var zarrV2Config: [String: Any] { get }
}

/// A codec failure; the array layer adds the array and chunk key to it.
public struct CodecError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
