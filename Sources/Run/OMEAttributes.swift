#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// The run's OME-Zarr 0.4 attributes, derived from the manifest and written only by `Run`, so no step compares or
/// edits another step's attributes. Coordinates are source pixels (y and x scaled by the output stride).
///
/// Each output with a pyramid is its own image group (`RUN/NAME`: `multiscales` with levels 0 … n−1, each ×2 in y
/// and x); integer maps also carry `image-label` (class or cluster colours and names), so napari paints them as
/// label layers. The run's root lists those groups under `labels`: ome-zarr-py (napari's reader) follows that list
/// and opens every output as a layer — float outputs as image layers (they have no `image-label`). Arrays an older
/// brainmap wrote as single arrays keep their one-level entry in the root's `multiscales`, as before.
enum OMEAttributes {
    static let order = ["labels", "labels_clean", "clusters", "probabilities", "entropy", "anomaly", "features", "pca", "nmf"]
    static let classes = ["1": "CTX", "2": "HYP", "3": "STR", "4": "VP", "5": "WM", "6": "ZI"]

    /// Live arrays in display order (label maps first).
    static func names(_ m: RunManifest) -> [String] {
        m.arrays.filter { $0.value.generation > 0 }.keys.sorted { a, b in
            (order.firstIndex(of: a) ?? order.count, a) < (order.firstIndex(of: b) ?? order.count, b)
        }
    }

    static func group(_ m: RunManifest) -> [String: Any] {
        let all = names(m)
        var out: [String: Any] = ["brainmap": ["kind": "prediction run", "manifest": "run.json", "classes": ["0": "not predicted"].merging(classes) { a, _ in a }]]
        let single = all.filter { m.arrays[$0]!.levels == nil }
        if !single.isEmpty { out["multiscales"] = single.map { n in multiscales(m, n, levels: 1, path: { _ in n }) } }
        let groups = all.filter { m.arrays[$0]!.levels != nil }
        if !groups.isEmpty { out["labels"] = groups }
        return out
    }

    /// The attributes of output `name`'s image group (nil when it is a single array).
    static func image(_ m: RunManifest, _ name: String) -> [String: Any]? {
        guard let a = m.arrays[name], let n = a.levels else { return nil }
        var out: [String: Any] = ["multiscales": [multiscales(m, name, levels: n, path: { "\($0)" })]]
        if a.labelMap {
            let clusters = m.steps[a.step]?.command == "cluster" || a.step == "clusters" || a.step.hasPrefix("clusters_")
            let k = clusters ? Int(m.steps[a.step]?.parameters["k"] ?? "") ?? LabelColors.clusters.count : classes.count
            let table = clusters ? LabelColors.clusters : LabelColors.classes
            out["image-label"] = [
                "version": "0.4",
                "colors": (1...max(1, k)).map { id -> [String: Any] in
                    let c = table[(id - 1) % table.count]
                    return ["label-value": id, "rgba": [Int(c.0), Int(c.1), Int(c.2), 255]]
                },
                "properties": (1...max(1, k)).map { id -> [String: Any] in
                    ["label-value": id, "class": clusters ? "cluster \(id)" : classes["\(id)"] ?? "class \(id)"]
                },
            ] as [String: Any]
        }
        return out
    }

    private static func multiscales(_ m: RunManifest, _ name: String, levels: Int, path: (Int) -> String) -> [String: Any] {
        let a = m.arrays[name]!, dims = a.dimensions
        let axes: [[String: Any]] = dims.map { ["name": $0, "type": $0 == "c" ? "channel" : "space"] }
        let datasets: [[String: Any]] = (0..<levels).map { k in
            let s = Double(m.stride * (1 << k))
            // Level k's pixel i covers level 0's pixels 2^k·i … 2^k·i + 2^k − 1: its centre lies (2^k − 1)/2 level-0
            // pixels further on, so viewers overlay the levels without a shift.
            let shift = Double(m.stride) * Double((1 << k) - 1) / 2
            var t: [[String: Any]] = [["type": "scale", "scale": dims.map { $0 == "y" || $0 == "x" ? s : 1 }]]
            if k > 0 { t.append(["type": "translation", "translation": dims.map { $0 == "y" || $0 == "x" ? shift : 0 }]) }
            return ["path": path(k), "coordinateTransformations": t]
        }
        var ms: [String: Any] = ["version": "0.4", "name": name, "axes": axes, "datasets": datasets]
        if levels > 1 { ms["type"] = a.labelMap ? "mode" : "mean" }
        return ms
    }
}
