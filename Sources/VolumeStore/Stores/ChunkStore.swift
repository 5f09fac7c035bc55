/// The byte layer under every array format: get and put opaque values by key ("raw/0.3.2", "raw/.zarray").
/// Local directories, HTTP servers and block services implement it; formats and codecs live above it.
public protocol ChunkStore: Sendable {
    /// The value stored under `key`, or nil when there is none (a missing chunk or metadata file).
    func get(_ key: String) async throws -> [UInt8]?
    /// Part of the value under `key` (used for shard indexes and inner chunks), or nil when there is no value.
    func get(_ key: String, range: ByteRange) async throws -> [UInt8]?
    /// Stores `value` under `key` atomically: a reader sees the old value or the new one, never a mix.
    func put(_ key: String, _ value: [UInt8]) async throws
    /// A human-readable location for error messages ("/data/vol.zarr", "https://host/vol.zarr").
    var location: String { get }
    /// Runs a read-modify-write of `key` as its only writer; a store that can tell (local files) refuses a second
    /// concurrent writer with an error instead of letting one update silently replace the other.
    func exclusiveWrite(_ key: String, _ body: @Sendable () async throws -> Void) async throws
    /// The size of the value under `key` when the store can tell cheaply, else nil.
    func size(_ key: String) async throws -> Int?
}

extension ChunkStore {
    /// The size of the value under `key` when the store can tell cheaply (local files), else nil.
    public func size(_ key: String) async throws -> Int? { nil }

    public func exclusiveWrite(_ key: String, _ body: @Sendable () async throws -> Void) async throws { try await body() }
}

extension ChunkStore {
    /// Joins path components with "/", skipping empty ones.
    public static func join(_ parts: String...) -> String {
        parts.filter { !$0.isEmpty }.joined(separator: "/")
    }
}

/// A byte range of a stored value: `length` bytes from `offset`, or the last `length` bytes when `offset` is nil.
public struct ByteRange: Sendable, Equatable {
    public var offset: Int?
    public var length: Int
    public init(offset: Int?, length: Int) { self.offset = offset; self.length = length }
}

extension ChunkStore {
    /// Part of a value. Stores that can read ranges natively (files, HTTP) override this.
    public func get(_ key: String, range: ByteRange) async throws -> [UInt8]? {
        guard let all = try await get(key) else { return nil }
        let start = range.offset ?? max(0, all.count - range.length)
        guard start >= 0, start + range.length <= all.count else {
            throw VolumeError.io(path: location + "/" + key, reason: "range \(start)+\(range.length) is beyond the value's \(all.count) bytes")
        }
        return Array(all[start..<(start + range.length)])
    }
}
