/// The group's attributes, derived from the manifest: one OME-Zarr 0.4 `multiscales` entry (a single level) per
/// live array, in source pixel units (y and x scaled by the output stride), label maps first. Written only by
/// `Run`, so no step compares or edits another step's attributes.
enum OMEAttributes {
    static let order = ["labels", "labels_clean", "clusters", "probabilities", "entropy", "anomaly", "features", "pca", "nmf"]

    static func group(_ m: RunManifest) -> [String: Any] {
        let names = m.arrays.filter { $0.value.generation > 0 }.keys.sorted { a, b in
            (order.firstIndex(of: a) ?? order.count, a) < (order.firstIndex(of: b) ?? order.count, b)
        }
        let s = Double(m.stride)
        let ms: [[String: Any]] = names.map { name in
            let dims = m.arrays[name]!.dimensions
            let axes: [[String: Any]] = dims.map { ["name": $0, "type": $0 == "c" ? "channel" : "space"] }
            let scale: [Double] = dims.map { $0 == "y" || $0 == "x" ? s : 1 }
            return ["version": "0.4", "name": name, "axes": axes,
                    "datasets": [["path": name, "coordinateTransformations": [["type": "scale", "scale": scale]]]]]
        }
        return ["multiscales": ms,
                "brainmap": ["kind": "prediction run", "manifest": "run.json",
                             "classes": ["0": "not predicted", "1": "CTX", "2": "HYP", "3": "STR", "4": "VP", "5": "WM", "6": "ZI"]]]
    }
}
