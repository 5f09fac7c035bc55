/// The byte layer under every array format: get and put opaque values by key ("raw/0.3.2", "raw/.zarray").
/// Local directories, HTTP servers and block services implement it; formats and codecs live above it.
public protocol ChunkStore: Sendable {
    /// The value stored under `key`, or nil when there is none (a missing chunk or metadata file).
    func get(_ key: String) async throws -> [UInt8]?
    /// Stores `value` under `key` atomically: a reader sees the old value or the new one, never a mix.
    func put(_ key: String, _ value: [UInt8]) async throws
    /// A human-readable location for error messages ("/data/vol.zarr", "https://host/vol.zarr").
    var location: String { get }
}

extension ChunkStore {
    /// Joins path components with "/", skipping empty ones.
    public static func join(_ parts: String...) -> String {
        parts.filter { !$0.isEmpty }.joined(separator: "/")
    }
}
