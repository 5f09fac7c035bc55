import Foundation

/// A BossDB channel (`bossdb://collection/experiment/channel[?res=N]`) presented as a Zarr v2 array: the store
/// answers `.zarray` from BossDB's metadata endpoints and each chunk key with one cutout request
/// (`/v1/cutout/{coll}/{exp}/{chan}/{res}/{x0}:{x1}/{y0}:{y1}/{z0}:{z1}/`, `Accept: application/blosc`), so big
/// regions are split into block-sized requests and every array operation (info, export, predict) works unchanged.
/// Cutouts are blosc frames of C-order (z, y, x) data; BossDB writes the bit depth, not the byte size, into the
/// frame's typesize byte, which is why only the decoded size and frame length are checked.
public struct BossDBStore: ChunkStore {
    public let host: String
    public let collection: String, experiment: String, channel: String
    public let resolution: Int
    public let metadata: ArrayMetadata
    public let voxelSize: [Double]
    let headers: [String]
    let fetcher: RemoteFetcher

    public var location: String { "bossdb://\(collection)/\(experiment)/\(channel)?res=\(resolution) (\(host))" }

    /// Cutout block (z, y, x): a multiple of BossDB's 16×512×512 cuboids.
    public static let block = [16, 512, 512]

    /// Parses the source, reads the metadata endpoints. `host` may carry a scheme (http:// for a local server);
    /// otherwise https:// is used. The token comes from BOSSDB_TOKEN unless given.
    public static func open(_ source: String, host: String? = nil, token: String? = nil,
                            fetcher: RemoteFetcher = RemoteFetcher()) async throws -> BossDBStore {
        let env = ProcessInfo.processInfo.environment
        guard source.hasPrefix("bossdb://") else { throw VolumeError.malformedMetadata(path: source, reason: "not a bossdb:// source") }
        var rest = String(source.dropFirst("bossdb://".count))
        var res = 0
        if let q = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: q)...]
            rest = String(rest[..<q])
            for item in query.split(separator: "&") {
                let kv = item.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[0] == "res", let r = Int(kv[1]), r >= 0 else {
                    throw VolumeError.malformedMetadata(path: source, reason: "unknown query '\(item)' (use ?res=N)")
                }
                res = r
            }
        }
        let parts = rest.split(separator: "/").map(String.init)
        guard parts.count == 3 else {
            throw VolumeError.malformedMetadata(path: source, reason: "expected bossdb://collection/experiment/channel[?res=N]")
        }
        var h = host ?? env["BOSSDB_HOST"] ?? "api.bossdb.io"
        if !h.hasPrefix("http://") && !h.hasPrefix("https://") { h = "https://" + h }
        if h.hasSuffix("/") { h.removeLast() }
        let tok = token ?? env["BOSSDB_TOKEN"]
        var f = fetcher
        f.authHint = tok == nil ? "Set BOSSDB_TOKEN to your BossDB API token (public datasets accept the public token)."
                                : "The token in BOSSDB_TOKEN was refused: check it and your access to this collection."
        let headers = tok.map { ["Authorization: Token \($0)"] } ?? []
        func json(_ path: String) async throws -> [String: Any] {
            let url = h + path
            let body = try await f.get(HTTPRequest(url: url, headers: headers + ["Accept: application/json"]), missingAllowed: false)!
            return try jsonObject(body, path: url)
        }
        let (c, e, ch) = (parts[0], parts[1], parts[2])
        let exp = try await json("/v1/collection/\(c)/experiment/\(e)/")
        guard let frameName = exp["coord_frame"] as? String else {
            throw VolumeError.malformedMetadata(path: h + "/v1/collection/\(c)/experiment/\(e)/", reason: "no coord_frame")
        }
        guard !frameName.contains("/") else {
            throw VolumeError.malformedMetadata(path: h + "/v1/collection/\(c)/experiment/\(e)/", reason: "coord_frame '\(frameName)' is not a name")
        }
        _ = try StoreKey.relative(frameName, from: "coord_frame", location: h + "/v1/collection/\(c)/experiment/\(e)/")
        let frame = try await json("/v1/coord/\(frameName)/")
        let chan = try await json("/v1/collection/\(c)/experiment/\(e)/channel/\(ch)/")
        let (md, voxel) = try layout(experiment: exp, frame: frame, channel: chan, res: res, source: source,
                                     frameURL: h + "/v1/coord/\(frameName)/")
        return BossDBStore(host: h, collection: c, experiment: e, channel: ch, resolution: res, metadata: md,
                           voxelSize: voxel, headers: headers, fetcher: f)
    }

    /// The array a channel's metadata describes at resolution `res` (pure: what the fuzzer drives). Every number
    /// from the server is range-checked before it sizes anything.
    static func layout(experiment exp: [String: Any], frame: [String: Any], channel chan: [String: Any], res: Int,
                       source: String, frameURL: String) throws -> (ArrayMetadata, [Double]) {
        func int(_ o: [String: Any], _ k: String) throws -> Int {
            guard let v = (o[k] as? NSNumber)?.intValue else { throw VolumeError.malformedMetadata(path: frameURL, reason: "missing \(k)") }
            guard (0...(1 << 40)).contains(v) else { throw VolumeError.malformedMetadata(path: frameURL, reason: "\(k) \(v) is out of range") }
            return v
        }
        let dtName = chan["datatype"] as? String ?? "uint8"
        guard let dtype = DataType(v3Name: dtName) else { throw VolumeError.unsupported(path: source, what: "channel datatype \(dtName)") }
        let levels = (exp["num_hierarchy_levels"] as? NSNumber)?.intValue ?? 1
        guard (1...30).contains(levels) else { throw VolumeError.malformedMetadata(path: source, reason: "num_hierarchy_levels \(levels) is out of range") }
        guard res >= 0, res < levels else { throw VolumeError.malformedMetadata(path: source, reason: "res=\(res) but the experiment has \(levels) resolution levels") }
        let isotropic = (exp["hierarchy_method"] as? String) == "isotropic"
        let scaleXY = 1 << res, scaleZ = isotropic ? 1 << res : 1
        let x0 = try int(frame, "x_start"), x1 = try int(frame, "x_stop"), y0 = try int(frame, "y_start"), y1 = try int(frame, "y_stop")
        let z0 = try int(frame, "z_start"), z1 = try int(frame, "z_stop")
        guard x0 == 0, y0 == 0, z0 == 0 else {
            throw VolumeError.unsupported(path: source, what: "coordinate frames that do not start at 0 (x_start \(x0), y_start \(y0), z_start \(z0))")
        }
        let shape = [(z1 + scaleZ - 1) / scaleZ, (y1 + scaleXY - 1) / scaleXY, (x1 + scaleXY - 1) / scaleXY]
        let vs = ["z_voxel_size", "y_voxel_size", "x_voxel_size"].map { (frame[$0] as? NSNumber)?.doubleValue ?? 1 }
        let md = ArrayMetadata(shape: shape, chunks: zip(block, shape).map { min($0, max($1, 1)) }, dtype: dtype, codec: nil)
        try md.validate(path: source)
        return (md, [vs[0] * Double(scaleZ), vs[1] * Double(scaleXY), vs[2] * Double(scaleXY)])
    }

    public func get(_ key: String) async throws -> [UInt8]? {
        if key == ".zarray" { return metadata.zarrV2JSON() }
        if key == ".zattrs" {
            return jsonBytes(["bossdb": ["host": host, "collection": collection, "experiment": experiment, "channel": channel,
                                         "resolution": resolution, "voxel_size": voxelSize]])
        }
        let idx = key.split(separator: ".").compactMap { Int($0) }
        guard idx.count == 3 else { return nil }
        let lo = zip(idx, metadata.chunks).map { $0 * $1 }
        let hi = (0..<3).map { min(lo[$0] + metadata.chunks[$0], metadata.shape[$0]) }
        guard (0..<3).allSatisfy({ lo[$0] < hi[$0] }) else { return nil }
        let url = "\(host)/v1/cutout/\(collection)/\(experiment)/\(channel)/\(resolution)/\(lo[2]):\(hi[2])/\(lo[1]):\(hi[1])/\(lo[0]):\(hi[0])/"
        let body = try await fetcher.get(HTTPRequest(url: url, headers: headers + ["Accept: application/blosc"]), missingAllowed: false)!
        let size = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]]
        let es = metadata.dtype.size
        let raw: [UInt8]
        do { raw = try BloscCodec.decodeFrame(body, expectedSize: size.reduce(1, *) * es) }
        catch let e as CodecError { throw VolumeError.corruptChunk(array: location, key: url, reason: e.reason) }
        if size == metadata.chunks { return raw }
        var full = [UInt8](repeating: 0, count: metadata.chunkBytes)   // edge chunks are stored full size
        raw.withUnsafeBytes { s in full.withUnsafeMutableBytes { d in
            copyBlock(from: s.baseAddress!, shape: size, at: [0, 0, 0], to: d.baseAddress!, shape: metadata.chunks, at: [0, 0, 0], extent: size, elementSize: es)
        } }
        return full
    }

    public func get(_ key: String, range: ByteRange) async throws -> [UInt8]? {
        throw VolumeError.unsupported(path: location, what: "byte-range reads")
    }

    public func put(_ key: String, _ value: [UInt8]) async throws {
        throw VolumeError.unsupported(path: location, what: "writing to BossDB (brainmap reads from it; write runs to a local path)")
    }
}
