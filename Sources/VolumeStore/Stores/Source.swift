import Foundation

/// The resources every read shares, made once by a command and handed down (tensorstore's `Context` is the model):
/// the decoded-chunk cache, the HTTP connection pool with its retry policy and transfer counters, and how to reach
/// remote sources. There are no process-wide singletons: two contexts never share a cache or a pool, and copies of
/// one context share all of them.
public struct SourceOptions: Sendable {
    /// A header line sent with every HTTP request, e.g. "Authorization: Bearer …".
    public var authHeader: String?
    /// The HTTP pool (threads start with the first request), retry policy and transfer counters.
    public var fetcher = RemoteFetcher()
    /// BossDB API host (else BOSSDB_HOST, else api.bossdb.io) and token (else BOSSDB_TOKEN).
    public var bossdbHost: String?
    public var bossdbToken: String?
    /// Decoded chunks are cached here (nil to read uncached).
    public var cache: ChunkCache?
    /// Threads for blocking local file I/O (started on first use).
    public var io = ThreadPool(name: "io", threads: 4)
    public var stats: TransferStats { fetcher.stats }
    public init(authHeader: String? = nil, cacheBytes: Int = 512 << 20) {
        self.authHeader = authHeader
        cache = cacheBytes > 0 ? ChunkCache(capacity: cacheBytes) : nil
    }
}

/// Opens an array from a source string: a local Zarr array directory (`vol.zarr/raw`), the same layout over
/// HTTP(S) (`https://host/vol.zarr/raw`), or a BossDB channel (`bossdb://collection/experiment/channel?res=N`).
public enum VolumeSource {
    public static func open(_ source: String, options: SourceOptions = SourceOptions()) async throws -> ZarrArray {
        // "?level=N" picks a level of an OME-Zarr multiscale image (default 0); bossdb:// has its own "?res=N".
        var source = source, level = 0
        if !source.hasPrefix("bossdb://"), let r = source.range(of: "?level=") {
            guard let l = Int(source[r.upperBound...]), l >= 0 else {
                throw VolumeError.malformedMetadata(path: source, reason: "?level= needs a non-negative integer")
            }
            level = l; source = String(source[..<r.lowerBound])
        }
        // Remote reads keep the HTTP pool busy; local reads are bounded by decoding on the cores.
        let store: any ChunkStore, concurrency: Int
        if source.hasPrefix("bossdb://") {
            store = try await BossDBStore.open(source, host: options.bossdbHost, token: options.bossdbToken, fetcher: options.fetcher)
            concurrency = 2 * HTTPSettings().maxConnections
        } else if source.hasPrefix("http://") || source.hasPrefix("https://") {
            store = HTTPChunkStore(base: source, authHeader: options.authHeader, fetcher: options.fetcher)
            concurrency = 2 * HTTPSettings().maxConnections
        } else {
            store = FileChunkStore(root: source, io: options.io)
            concurrency = 4
        }
        var path = ""
        if let ms = try await OMEZarr.multiscales(store: store) {
            let paths = try OMEZarr.levelPaths(ms, location: source)
            guard level < paths.count else {
                throw VolumeError.malformedMetadata(path: source, reason: "level \(level) requested, the image has levels 0…\(paths.count - 1)")
            }
            path = paths[level]
        } else if level > 0 {
            throw VolumeError.malformedMetadata(path: source, reason: "?level=\(level) given, but this is not an OME-Zarr multiscale image")
        }
        do {
            return try await ZarrArray.open(store: store, path: path).cached(options.cache, concurrency: concurrency)
        } catch VolumeError.notFound {
            let v2Group = try await store.get(".zgroup") != nil
            let v3Group = v2Group ? false : ((try? await store.get("zarr.json")) ?? nil) != nil
            if v2Group || v3Group {
                let arrays = try await groupArrays(store: store, source: source)
                throw VolumeError.malformedMetadata(path: source, reason: "this is a Zarr group, not an array; name one of its arrays"
                    + (arrays.isEmpty ? " (SOURCE/NAME)" : ": " + arrays.prefix(8).map { source + "/" + $0 }.joined(separator: ", ")))
            }
            if let file = store as? FileChunkStore {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: file.root, isDirectory: &isDir), !isDir.boolValue {
                    throw VolumeError.malformedMetadata(path: source, reason: "this is a file, not a Zarr array or group (a directory holding .zarray or zarr.json)")
                }
            }
            throw VolumeError.notFound(path: source)
        }
    }

    /// The arrays a group really has: subdirectories with array metadata (local), or those listed in consolidated
    /// metadata (`.zmetadata`, which remote v2 groups often carry). Empty when they cannot be listed.
    static func groupArrays(store: any ChunkStore, source: String) async throws -> [String] {
        if let file = store as? FileChunkStore {
            let fm = FileManager.default
            return ((try? fm.contentsOfDirectory(atPath: file.root)) ?? []).filter { n in
                !n.hasPrefix(".") && (fm.fileExists(atPath: "\(file.root)/\(n)/.zarray") || fm.fileExists(atPath: "\(file.root)/\(n)/zarr.json")
                    || fm.fileExists(atPath: "\(file.root)/\(n)/.zattrs"))
            }.sorted()
        }
        guard let b = try? await store.get(".zmetadata"), let o = try? jsonObject(b, path: source + "/.zmetadata"),
              let md = o["metadata"] as? [String: Any] else { return [] }
        return md.keys.filter { $0.hasSuffix("/.zarray") }.map { String($0.dropLast("/.zarray".count)) }.filter { !$0.contains("/") }.sorted()
    }

    /// Splits "OUT.zarr/NAME" into the group directory and the array name, for commands that create arrays.
    public static func splitArrayPath(_ s: String) -> (group: String, name: String) {
        let t = s.hasSuffix("/") ? String(s.dropLast()) : s
        let ns = t as NSString
        return (ns.deletingLastPathComponent, ns.lastPathComponent)
    }
}
