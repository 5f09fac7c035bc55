/// A bytes→bytes codec (a compressor or a checksum): turns the bytes of a chunk into the bytes stored under its key,
/// and back. `decode` gets the decoded length when the pipeline knows it (the codec nearest the array) and must
/// check it; otherwise the codec finds it from its own framing, within a limit.
public protocol Codec: Sendable {
    func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8]
    func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8]
    /// The codec's Zarr v2 `compressor` JSON object, nil when it has no v2 form.
    var zarrV2Config: [String: Any]? { get }
    /// The codec's entry in a Zarr v3 `codecs` list.
    func zarrV3Config(elementSize: Int) -> [String: Any]
}

/// A codec failure; the array layer adds the array and chunk key to it.
public struct CodecError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
