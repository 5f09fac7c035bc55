/// A Zarr v2 group: a `.zgroup` marker, `.zattrs`, and arrays under it by name.
public struct ZarrGroup: Sendable {
    public let store: any ChunkStore
    public let path: String

    public init(store: any ChunkStore, path: String = "") { self.store = store; self.path = path }

    /// Creates the group marker and writes its attributes (merged over existing ones).
    @discardableResult
    public static func create(store: any ChunkStore, path: String = "", attributes: [String: Any] = [:]) async throws -> ZarrGroup {
        let g = ZarrGroup(store: store, path: path)
        try await store.put(ZarrV2.key(path, ".zgroup"), jsonBytes(["zarr_format": 2]))
        if !attributes.isEmpty { try await g.setAttributes(attributes) }
        return g
    }

    public func attributes() async throws -> [String: Any] {
        let key = ZarrV2.key(path, ".zattrs")
        guard let b = try await store.get(key) else { return [:] }
        return try jsonObject(b, path: store.location + "/" + key)
    }

    public func setAttributes(_ attrs: [String: Any]) async throws {
        var merged = try await attributes()
        for (k, v) in attrs { merged[k] = v }
        try await store.put(ZarrV2.key(path, ".zattrs"), jsonBytes(merged))
    }

    public func array(_ name: String) async throws -> ZarrArray {
        try await ZarrArray.open(store: store, path: ZarrV2.key(path, name))
    }
}
