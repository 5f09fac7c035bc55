import Foundation

/// Opens an array from a source string: a local Zarr array directory (`vol.zarr/raw`).
/// Remote kinds (`http(s)://`, `bossdb://`) plug in here as their stores land.
public enum VolumeSource {
    public static func open(_ source: String) async throws -> ZarrArray {
        if source.hasPrefix("http://") || source.hasPrefix("https://") || source.hasPrefix("bossdb://") {
            throw VolumeError.unsupported(path: source, what: "remote sources (HTTP Zarr, BossDB) in this build")
        }
        let store = FileChunkStore(root: source)
        if store.exists(".zarray") { return try await ZarrArray.open(store: store, path: "") }
        if store.exists(".zgroup") {
            throw VolumeError.malformedMetadata(path: source, reason: "this is a Zarr group, not an array; name one of its arrays, e.g. \(source)/raw")
        }
        throw VolumeError.notFound(path: source)
    }

    /// Splits "OUT.zarr/NAME" into the group directory and the array name, for commands that create arrays.
    public static func splitArrayPath(_ s: String) -> (group: String, name: String) {
        let t = s.hasSuffix("/") ? String(s.dropLast()) : s
        let ns = t as NSString
        return (ns.deletingLastPathComponent, ns.lastPathComponent)
    }
}
