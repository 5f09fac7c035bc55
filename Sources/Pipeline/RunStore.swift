#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VolumeStore

/// A run directory, `RUN.zarr`: a Zarr v2 group with the output arrays, `run.json` and the journal.
///
/// Several processes (shards) may open one run at once. Whoever comes first creates `run.json` (exclusively, by
/// `link`); the others compare theirs with it and refuse on any difference. Group and array metadata are the same
/// bytes for the same parameters, so every process writes them if absent (atomically) and checks them if present.
public struct RunStore: Sendable {
    public let root: String
    public let store: FileChunkStore
    public let arrays: [OutputKind: ZarrArray]
    public let grid: BlockGrid

    /// What identifies a run: parameters that change output bytes. A resume must match all of them.
    public struct Identity: Sendable {
        public var fields: [(String, String)]
        var json: [String: Any] { Dictionary(uniqueKeysWithValues: fields.map { ($0.0, $0.1 as Any) }) }
    }

    public static func open(root: String, identity: Identity, info: [String: Any], outputs: [OutputKind],
                            precision: OutputPrecision, grid: BlockGrid, restart: Bool, io: ThreadPool) async throws -> RunStore {
        let fm = FileManager.default
        if restart, fm.fileExists(atPath: root) {
            guard fm.fileExists(atPath: root + "/run.json") else {
                throw PipelineError.input("--restart: \(root) exists but is not a brainmap run (no run.json); not deleting it")
            }
            try fm.removeItem(atPath: root)
        }
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: root, isDirectory: &isDir), !isDir.boolValue {
            throw PipelineError.input("--out \(root) is a file, not a run directory")
        }
        do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) }
        catch { throw PipelineError.input("cannot create the run directory \(root): \(error.localizedDescription)") }
        try claimOrVerify(root: root, identity: identity, info: info)

        let store = FileChunkStore(root: root, durable: true, io: io)
        try await putOrVerify(store, ".zgroup", jsonBytes(["zarr_format": 2]))
        try await putOrVerify(store, ".zattrs", jsonBytes(groupAttributes(outputs: outputs, grid: grid, identity: identity)))
        var arrays: [OutputKind: ZarrArray] = [:]
        for k in outputs {
            let md = try k.metadata(grid: grid, precision: precision)
            try await putOrVerify(store, k.rawValue + "/.zarray", md.zarrV2JSON())
            try await putOrVerify(store, k.rawValue + "/.zattrs", jsonBytes(["_ARRAY_DIMENSIONS": k.dimensionNames]))
            arrays[k] = ZarrArray(store: store, path: k.rawValue, metadata: md)
        }
        return RunStore(root: root, store: store, arrays: arrays, grid: grid)
    }

    /// OME-Zarr 0.4-style metadata: one multiscales entry (a single level) per output, in source pixel units.
    static func groupAttributes(outputs: [OutputKind], grid: BlockGrid, identity: Identity) -> [String: Any] {
        let stride = Double(identity.fields.first { $0.0 == "stride" }.map { Int($0.1) ?? 1 } ?? 1)
        let ms: [[String: Any]] = outputs.map { k in
            var axes: [[String: Any]] = [["name": "z", "type": "space"], ["name": "y", "type": "space"], ["name": "x", "type": "space"]]
            var scale = [1.0, stride, stride]
            if k.hasChannelAxis { axes.insert(["name": "c", "type": "channel"], at: 0); scale.insert(1, at: 0) }
            return ["version": "0.4", "name": k.rawValue, "axes": axes,
                    "datasets": [["path": k.rawValue, "coordinateTransformations": [["type": "scale", "scale": scale]]]]]
        }
        return ["multiscales": ms, "brainmap": ["kind": "prediction run", "classes": ["0": "not predicted", "1": "CTX", "2": "HYP", "3": "STR", "4": "VP", "5": "WM", "6": "ZI"]]]
    }

    /// Creates `run.json` exclusively, or checks that the existing one has the same identity.
    static func claimOrVerify(root: String, identity: Identity, info: [String: Any]) throws {
        let path = root + "/run.json"
        var doc = info
        doc["identity"] = identity.json
        let tmp = root + "/.run.json-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(jsonBytes(doc))) else {
            throw PipelineError.input("cannot write in \(root): check permissions and free space")
        }
        defer { unlink(tmp) }
        if link(tmp, path) == 0 { return }
        guard errno == EEXIST else { throw PipelineError.input("cannot create \(path): \(String(cString: strerror(errno)))") }
        guard let data = FileManager.default.contents(atPath: path),
              let old = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let oldID = old["identity"] as? [String: Any] else {
            throw PipelineError.input("\(path) is not a brainmap run.json; use --restart to start over or choose another --out")
        }
        var diffs: [String] = []
        for (k, v) in identity.fields {
            let was = oldID[k].map { "\($0)" } ?? "(absent)"
            if was != v { diffs.append("\(k): the run has \(was), this command has \(v)") }
        }
        if !diffs.isEmpty { throw PipelineError.mismatch(run: root, differences: diffs) }
    }

    /// Writes a metadata document if absent; if present it must be identical (same parameters → same bytes).
    static func putOrVerify(_ store: FileChunkStore, _ key: String, _ bytes: [UInt8]) async throws {
        if let old = try await store.get(key) {
            guard old == bytes else {
                throw PipelineError.mismatch(run: store.root, differences: ["\(key) differs from what these parameters write"])
            }
            return
        }
        try await store.put(key, bytes)
    }
}
