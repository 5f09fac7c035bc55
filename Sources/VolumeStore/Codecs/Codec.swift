/// A bytes→bytes codec (a compressor or a checksum): turns the bytes of a chunk into the bytes stored under its key,
/// and back. `decode` gets the decoded length when the pipeline knows it (the codec nearest the array) and must
/// check it; otherwise the codec finds it from its own framing, within a limit.
public protocol Codec: Sendable {
    func encode(_ raw: [UInt8], elementSize: Int) throws -> [UInt8]
    func decode(_ stored: [UInt8], expectedSize: Int?) throws -> [UInt8]
    /// Decodes bytes whose decoded length is unknown but cannot exceed `limit` (a codec inside a chain: what it
    /// decodes to is another codec's encoding of the chunk). A codec that sizes its output from its own header
    /// refuses a larger claim before allocating (blosc's header may claim up to 4 GiB).
    func decode(_ stored: [UInt8], atMost limit: Int) throws -> [UInt8]
    /// The codec's Zarr v2 `compressor` JSON object, nil when it has no v2 form.
    var zarrV2Config: [String: Any]? { get }
    /// The codec's entry in a Zarr v3 `codecs` list.
    func zarrV3Config(elementSize: Int) -> [String: Any]
}

extension Codec {
    /// Codecs that never allocate from a header's claim (they grow with real output, bounded by their own limit)
    /// decode first and check after.
    public func decode(_ stored: [UInt8], atMost limit: Int) throws -> [UInt8] {
        let b = try decode(stored, expectedSize: nil)
        guard b.count <= limit else {
            throw CodecError("a codec inside the chain decoded to \(b.count) bytes, more than the chunk's encoding can hold (\(limit)): corrupt")
        }
        return b
    }
}

/// A codec failure; the array layer adds the array and chunk key to it.
public struct CodecError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
