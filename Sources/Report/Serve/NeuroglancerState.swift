import Foundation

/// A Neuroglancer viewer state for a served run: the raw volume (when it is served or remote), `labels` as a
/// segmentation layer in the report's class colours, and one NMF factor (or PC1) as an image layer. Run arrays are
/// at the run's stride; their layers are scaled to the raw's voxel size (from its OME-Zarr metadata) so they overlay.
public enum NeuroglancerState {
    /// - Parameters:
    ///   - base: the URL the run is served at ("http://127.0.0.1:8000").
    ///   - rawURL: where the raw is readable over HTTP (nil: no raw layer).
    ///   - rawAttributes: the raw group's attributes (its OME multiscales give the voxel size).
    public static func state(contents: RunContents, base: String, rawURL: String?, rawAttributes: [String: Any]?, slice: Int?, factor: Int = 0) -> [String: Any] {
        let (voxel, unit) = voxelSize(rawAttributes)
        func dims(_ s: [Double]) -> [String: Any] { ["z": [s[0], unit], "y": [s[1], unit], "x": [s[2], unit]] }
        let st = Double(contents.stride)
        let runScale = [voxel[0], voxel[1] * st, voxel[2] * st]
        var layers: [[String: Any]] = []
        if let rawURL {
            layers.append(["type": "image", "name": "raw", "source": "zarr://" + rawURL])
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: contents.image(.labels)) {
            let colors = Dictionary(uniqueKeysWithValues: contents.classNames.keys.map { (String($0), Palette.color($0, .classes).hex) })
            layers.append(["type": "segmentation", "name": "labels",
                           "source": ["url": "zarr://\(base)/\(RunContents.ArrayName.labels.rawValue)", "transform": ["outputDimensions": dims(runScale)]],
                           "segments": contents.classNames.keys.sorted().map(String.init), "segmentColors": colors, "selectedAlpha": 0.45])
        }
        for (name, title) in [(RunContents.ArrayName.nmf, "NMF factor \(factor + 1)"), (.pca, "PC1")] where fm.fileExists(atPath: contents.image(name)) {
            var out = dims(runScale)
            out["c'"] = [1, ""]
            layers.append(["type": "image", "name": title,
                           "source": ["url": "zarr://\(base)/\(name.rawValue)", "transform": ["outputDimensions": out]],
                           "localDimensions": ["c'": [1, ""]], "localPosition": [name == .nmf ? factor : 0],
                           "shader": "#uicontrol invlerp normalized\nvoid main() { emitRGB(vec3(normalized(), normalized() * 0.6, 1.0 - normalized())); }",
                           "visible": name == .nmf])
            break
        }
        var state: [String: Any] = ["dimensions": dims(voxel), "layers": layers, "layout": "xy", "crossSectionScale": 4,
                                    "selectedLayer": ["layer": "labels", "visible": true]]
        if let shape = contents.runJSON["identity"].flatMap({ ($0 as? [String: Any])?["source_shape"] as? String }),
           let dimsArr = try? JSONSerialization.jsonObject(with: Data(shape.utf8)) as? [Int], dimsArr.count == 3 {
            state["position"] = [Double(slice ?? dimsArr[0] / 2) + 0.5, Double(dimsArr[1]) / 2, Double(dimsArr[2]) / 2]
        }
        return state
    }

    /// The link that opens the state in the public Neuroglancer client (the state travels in the URL fragment).
    public static func link(_ state: [String: Any], client: String = "https://neuroglancer-demo.appspot.com/") -> String {
        let json = String(decoding: (try? JSONSerialization.data(withJSONObject: state, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return client + "#!" + (json.addingPercentEncoding(withAllowedCharacters: allowed) ?? json)
    }

    /// Level 0's voxel size and unit from OME multiscales, in Neuroglancer's SI form (metres); [1, 1, 1] "" otherwise.
    static func voxelSize(_ attrs: [String: Any]?) -> ([Double], String) {
        guard let ms = (attrs?["multiscales"] as? [[String: Any]])?.first, let ds = (ms["datasets"] as? [[String: Any]])?.first,
              let scale = ((ds["coordinateTransformations"] as? [[String: Any]])?.first { $0["type"] as? String == "scale" })?["scale"] as? [Double],
              scale.count >= 3 else { return ([1, 1, 1], "") }
        let unit = ((ms["axes"] as? [[String: Any]])?.last?["unit"] as? String) ?? ""
        let factor: Double? = ["micrometer": 1e-6, "nanometer": 1e-9, "millimeter": 1e-3, "meter": 1][unit]
        return (scale.suffix(3).map { $0 * (factor ?? 1) }, factor == nil ? "" : "m")
    }
}
