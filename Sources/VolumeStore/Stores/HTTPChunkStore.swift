/// A read-only chunk store over HTTP(S): `key` is fetched from `base/key`. 404/410 mean "no such key" (Zarr's
/// missing chunk → fill value); every other failure is retried or reported by `RemoteFetcher`.
public struct HTTPChunkStore: ChunkStore {
    public let base: String
    public let headers: [String]
    public let fetcher: RemoteFetcher
    public var location: String { redactingCredentials(base) }

    /// `authHeader` is a full header line, e.g. "Authorization: Bearer …".
    public init(base: String, authHeader: String? = nil, fetcher: RemoteFetcher = RemoteFetcher()) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.headers = authHeader.map { [$0] } ?? []
        var f = fetcher
        if authHeader == nil { f.authHint = "The server wants credentials: pass --auth-header 'Authorization: …' or check the URL." }
        self.fetcher = f
    }

    public func url(_ key: String) -> String { key.isEmpty ? base : base + "/" + key }

    public func get(_ key: String) async throws -> [UInt8]? {
        try await fetcher.get(HTTPRequest(url: url(key), headers: headers), missingAllowed: true)
    }

    public func get(_ key: String, range: ByteRange) async throws -> [UInt8]? {
        try await fetcher.get(HTTPRequest(url: url(key), headers: headers, range: (range.offset, range.length)), missingAllowed: true)
    }

    public func put(_ key: String, _ value: [UInt8]) async throws {
        throw VolumeError.unsupported(path: url(key), what: "writing over HTTP (remote stores are read-only; write runs to a local path)")
    }
}
