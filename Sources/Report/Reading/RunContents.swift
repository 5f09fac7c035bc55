import Foundation
import VolumeStore

/// What a run holds, as the report finds it: run.json, the arrays each step wrote and the result files. Every lookup
/// tolerates absence (a step not run is simply not in the report); what is present but unreadable is an error.
public struct RunContents: @unchecked Sendable {   // runJSON is immutable after init
    public let root: String
    /// run.json (predict's parameters, identity and versions).
    public let runJSON: [String: Any]
    /// Run pixel (i, j) is source pixel (stride·i, stride·j).
    public let stride: Int
    /// The predicted volume, as predict was given it (nil when run.json does not say).
    public let source: String?
    /// Label id → class name, from the group's attributes (predict writes them), else the paper's six.
    public let classNames: [Int: String]

    /// The run's arrays the report knows how to draw (besides the clusterings, whose names `cluster --name` chooses).
    public enum ArrayName: String, CaseIterable, Sendable {
        case labels, labelsClean = "labels_clean", entropy, anomaly, pca, nmf
    }

    public init(root: String) throws {
        let root = root.hasSuffix("/") ? String(root.dropLast()) : root
        guard let doc = Self.json(root + "/run.json") else {
            throw ReportError.input("\(root) is not a brainmap run (no readable run.json); report takes the RUN.zarr that predict wrote")
        }
        let identity = doc["identity"] as? [String: Any] ?? [:]
        self.root = root
        runJSON = doc
        stride = Int(identity["stride"] as? String ?? "1") ?? 1
        source = identity["source"] as? String
        let attrs = Self.json(root + "/.zattrs")
        let names = ((attrs?["brainmap"] as? [String: Any])?["classes"] as? [String: String]) ?? [:]
        var classes: [Int: String] = [:]
        for (k, v) in names { if let id = Int(k), id > 0 { classes[id] = v } }
        classNames = classes.isEmpty ? [1: "CTX", 2: "HYP", 3: "STR", 4: "VP", 5: "WM", 6: "ZI"] : classes
    }

    /// Where array `name`'s full-resolution data lives. The one place that knows the run's layout: run.json records
    /// an output with a pyramid as an OME-Zarr image group (`levels`: level 0 at `RUN/NAME/0`); runs an older
    /// brainmap wrote (no `levels`, or format 1) have a single array at `RUN/NAME`.
    public func location(_ name: String) -> String {
        let record = (runJSON["arrays"] as? [String: Any])?[name] as? [String: Any]
        return root + "/" + name + (record?["levels"] is Int ? "/0" : "")
    }
    public func location(_ name: ArrayName) -> String { location(name.rawValue) }

    /// The image group (or single array) of output `name`: what a viewer opens to see every level.
    public func image(_ name: ArrayName) -> String { root + "/" + name.rawValue }

    /// The array, or nil when the step that writes it has not run.
    public func open(_ name: String, context: SourceOptions) async throws -> ZarrArray? {
        let path = location(name)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do { return try await VolumeSource.open(path, options: context) }
        catch { throw ReportError.input("\(path) exists but cannot be opened (\(error)); re-run the step that writes it or remove it") }
    }
    public func open(_ name: ArrayName, context: SourceOptions) async throws -> ZarrArray? { try await open(name.rawValue, context: context) }

    /// The clusterings the run holds: `clusters`, then every `clusters_NAME` (`cluster --name`, e.g. the demo's
    /// areas from PCs beside its layers) by name. Each is its own step with its own `analysis/NAME.json`.
    public var clusterings: [String] {
        var names = Set((runJSON["arrays"] as? [String: Any] ?? [:]).keys.filter { $0 == "clusters" || $0.hasPrefix("clusters_") })
        if names.isEmpty && FileManager.default.fileExists(atPath: root + "/clusters") { names = ["clusters"] }   // format 1
        return names.sorted { ($0 == "clusters" ? 0 : 1, $0) < ($1 == "clusters" ? 0 : 1, $1) }
    }

    /// One line on how clustering `name` was made, from its step's parameters (format 2; empty for format 1):
    /// "on pca 1,2,3, smoothed σ 32 px, under labels".
    public func clusteringDescription(_ name: String) -> String {
        guard let p = steps[name]?["parameters"] as? [String: String] else { return "" }
        var parts = ["on \(p["on"] ?? "?")" + (p["components"].map { $0 == "all" ? "" : " \($0)" } ?? "")]
        if let s = p["smooth"], let v = Double(s), v > 0 { parts.append("smoothed σ \(String(format: "%g", v)) px") }
        if let m = p["mask"], m != "none" { parts.append("under \(m)") }
        return parts.joined(separator: ", ")
    }

    /// `evaluation-ARRAY.json` documents, by array name, in the order labels, labels_clean, others.
    public func evaluations() -> [(array: String, doc: [String: Any])] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasPrefix("evaluation-") && $0.hasSuffix(".json") }
        let order = { (n: String) -> Int in n == "labels" ? 0 : n == "labels_clean" ? 1 : 2 }
        return files.compactMap { f -> (String, [String: Any])? in
            guard let doc = Self.json(root + "/" + f) else { return nil }
            return (String(f.dropFirst("evaluation-".count).dropLast(".json".count)), doc)
        }.sorted { (order($0.0), $0.0) < (order($1.0), $1.0) }
    }

    /// A result of the analysis, `RUN/analysis/NAME.json` (pca, nmf, clusters, select-factors), or of cleanup.
    public func result(_ name: String) -> [String: Any]? {
        Self.json(name == "cleanup" ? root + "/cleanup.json" : root + "/analysis/\(name).json")
    }

    /// The steps run.json records (format 2: `steps`, name → command, parameters, generation, info, updated); empty for
    /// format 1 runs, whose parameters live in `identity` and the result files.
    public var steps: [String: [String: Any]] { runJSON["steps"] as? [String: [String: Any]] ?? [:] }

    /// Free-form facts predict recorded (format 2: `steps.predict.info`; format 1: top-level `model`, `versions`).
    public var predictInfo: [String: String] {
        if let info = steps["predict"]?["info"] as? [String: String] { return info }
        var out: [String: String] = [:]
        if let m = runJSON["model"] as? String { out["model"] = m }
        for (k, v) in runJSON["versions"] as? [String: Any] ?? [:] { out[k] = "\(v)" }
        return out
    }

    /// The model's sidecar (MODEL.json beside MODEL.safetensors: training curves, parameters): `override` when given,
    /// else the model path run.json names, as written or beside the run (a run and its model moved together).
    public func modelSidecar(override: String?) -> (path: String, doc: [String: Any])? {
        if let override { return Self.json(override).map { (override, $0) } }
        guard let model = predictInfo["model"] else { return nil }
        let sidecar = (model.hasSuffix(".safetensors") ? String(model.dropLast(".safetensors".count)) : model) + ".json"
        let beside = ((root as NSString).deletingLastPathComponent as NSString).appendingPathComponent((sidecar as NSString).lastPathComponent)
        for p in [sidecar, beside] { if let d = Self.json(p) { return (p, d) } }
        return nil
    }

    /// Slices (z) on which `labels` has at least one chunk: the ones predict processed.
    public func predictedSlices(_ labels: ZarrArray) async throws -> [Int] {
        var out: [Int] = []
        for z in 0..<labels.shape[0] {
            let plane = Box(start: [z, 0, 0], size: [1, labels.shape[1], labels.shape[2]])
            for idx in labels.chunks(overlapping: plane) where try await labels.readChunkIfPresent(idx) != nil {
                out.append(z); break
            }
        }
        return out
    }

    static func json(_ path: String) -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }
}

extension RunContents {
    /// Names of the ids of an ROI array, when its group documents them (`brainmap.NAME` in the group attributes, as
    /// the phantom writes for `areas` and `layers`); empty otherwise (ids are shown as numbers).
    public static func roiNames(_ source: String) -> [Int64: String] {
        let ns = source as NSString
        guard let attrs = json(ns.deletingLastPathComponent + "/.zattrs"),
              let names = (attrs["brainmap"] as? [String: Any])?[ns.lastPathComponent] as? [String: String] else { return [:] }
        var out: [Int64: String] = [:]
        for (k, v) in names { if let id = Int64(k) { out[id] = v } }
        return out
    }
}
