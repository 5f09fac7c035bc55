// libFuzzer entry point for brainmap's parsers of untrusted bytes; built by tools/fuzz.sh together with the
// VolumeStore sources, the run layer, and NeuralNet's safetensors reader, the label-map and training-state parsers
// into one binary (one build, not one per target: each build of the sources with sanitizers took a minute or more).
// The target is chosen at run time by BRAINMAP_FUZZ_TARGET. A parser may throw (that is its job); it must never
// crash, hang or allocate without bound.
import Foundation

/// The parser to fuzz, read once: `zarray`, `zarrjson`, `ome`, … (tools/fuzz.sh lists them).
let fuzzTarget = ProcessInfo.processInfo.environment["BRAINMAP_FUZZ_TARGET"] ?? ""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let b = Array(UnsafeBufferPointer(start: data, count: size))
    switch fuzzTarget {
    case "zarray":
        _ = try? ArrayMetadata.zarrV2(json: b, path: "fuzz/.zarray")
    case "zarrjson":
        _ = try? ArrayMetadata.zarrV3(json: b, path: "fuzz/zarr.json")
    case "ome":
        if let o = try? jsonObject(b, path: "fuzz/.zattrs"), let ms = (o["multiscales"] as? [[String: Any]])?.first {
            _ = try? OMEZarr.levelPaths(ms, location: "fuzz")
        }
    case "blosc":
        // The first 4 bytes pick the decoded size the caller expects; the rest is the frame.
        if b.count >= 4 {
            let expected = Int(b[0]) | Int(b[1]) << 8 | Int(b[2] & 0x0f) << 16
            _ = try? BloscCodec.decodeFrame(Array(b[4...]), expectedSize: expected)
        }
    case "codecs":
        // zstd, gzip, zlib, lz4 and crc32c decoders on the same bytes, expected size unknown then known.
        let codecs: [any Codec] = [try! ZstdCodec(), try! DeflateCodec(.gzip), try! DeflateCodec(.zlib), LZ4Codec(), CRC32CCodec()]
        for c in codecs { _ = try? c.decode(b, expectedSize: nil); _ = try? c.decode(b, expectedSize: 4096) }
    case "shardindex":
        // A 2×2×2-chunk shard index (with crc32c), then the same bytes as an index without a checksum.
        _ = try? ShardingSpec(shardShape: [2, 2, 2]).parseIndex(b, inner: [1, 1, 1], shardSize: nil)
        _ = try? ShardingSpec(shardShape: [2, 2, 2], indexChecksum: false).parseIndex(b, inner: [1, 1, 1], shardSize: b.count)
    case "bossdb":
        // {"experiment": {…}, "frame": {…}, "channel": {…}, "res": N}: the three metadata answers and the asked level.
        if let o = try? jsonObject(b, path: "fuzz"), let e = o["experiment"] as? [String: Any], let f = o["frame"] as? [String: Any],
           let c = o["channel"] as? [String: Any] {
            _ = try? BossDBStore.layout(experiment: e, frame: f, channel: c, res: (o["res"] as? NSNumber)?.intValue ?? 0,
                                        source: "bossdb://fuzz", frameURL: "fuzz")
        }
    case "safetensors":
        _ = try? Safetensors.decode(b, path: "fuzz.safetensors")
    case "labelmap":
        // A --label-map JSON file.
        _ = try? LabelMapJSON.parse(b, classes: ["CTX", "HYP", "STR", "VP", "WM", "ZI"])
    case "modelstate":
        // A training state (MODEL.safetensors.state): the safetensors container, then the JSON in its metadata. (MODEL.json
        // beside a model is written for people, never read back.)
        if let (_, meta) = try? Safetensors.decodeWithMetadata(b, path: "fuzz.state") { _ = TrainStateMetadata.parse(meta) }
    case "manifest":
        // A run's run.json (format 2, or a format-1 one to migrate), for a run directory that does not exist.
        _ = try? Run(root: "/nonexistent/fuzz.zarr", manifest: RunManifest()).parseManifest(b)
    case "tiff":
        let path = NSTemporaryDirectory() + "/brainmap-fuzz-\(getpid()).tif"
        FileManager.default.createFile(atPath: path, contents: Data(b))
        if let r = try? TiffReader(path: path) {
            for p in r.pages.indices where r.pages[p].width * r.pages[p].height <= 1 << 22 { _ = try? r.readRows(page: p, 0..<min(4, r.pages[p].height)) }
        }
    default:
        fatalError("BRAINMAP_FUZZ_TARGET '\(fuzzTarget)' names no fuzz target (tools/fuzz.sh lists them)")
    }
    return 0
}
