import Foundation

/// The page's sections built from a run's result files: evaluation, training, analysis, provenance. Each returns ""
/// when its inputs are absent. Images they need (confusion matrices) go through `save`.
struct ResultSections {
    let contents: RunContents
    let save: (Image, String) throws -> String

    // MARK: evaluation

    func evaluation() throws -> String {
        var s = ""
        for (array, doc) in contents.evaluations() {
            let file = "evaluation-\(array).json"
            if let auc = doc["roc_auc"] as? Double {   // evaluate --anomaly-truth
                s += "<h3>anomaly</h3><p>ROC AUC <b><span data-key=\"\(file)#roc_auc\">\(HTML.number(auc))</span></b> of the anomaly map: "
                    + "\(doc["anomalous_pixels"] as? Int ?? 0) anomalous against \(doc["normal_pixels"] as? Int ?? 0) normal tissue pixels "
                    + "(mean distance \(HTML.number(doc["mean_anomaly_anomalous"] as? Double ?? 0)) vs \(HTML.number(doc["mean_anomaly_normal"] as? Double ?? 0))) "
                    + "of slices \(HTML.escape((doc["slices"] as? [Int] ?? []).map(String.init).joined(separator: ", "))); truth "
                    + "<code>\(HTML.escape(doc["truth"] as? String ?? "?"))</code></p>"
                continue
            }
            guard let classes = doc["classes"] as? [String], let confusion = doc["confusion"] as? [[Int]],
                  let perClass = doc["per_class"] as? [String: [String: Any]] else { continue }
            let acc = doc["accuracy"] as? Double ?? 0, macro = doc["macro_f1"] as? Double ?? 0
            s += "<h3>\(HTML.escape(array))</h3><p>accuracy <b><span data-key=\"\(file)#accuracy\">\(HTML.number(acc))</span></b>, macro F1 "
                + "<b><span data-key=\"\(file)#macro_f1\">\(HTML.number(macro))</span></b> over <span data-key=\"\(file)#pixels\">\(doc["pixels"] as? Int ?? 0)</span> annotated, predicted pixels"
                + " of slices \(HTML.escape((doc["slices"] as? [Int] ?? []).map(String.init).joined(separator: ", ")))"
                + ((doc["not_predicted"] as? Int ?? 0) > 0 ? "; \(doc["not_predicted"] as? Int ?? 0) annotated pixels not predicted" : "") + "</p>"
            let rows = classes.map { c -> [String] in
                let m = perClass[c] ?? [:]
                return [HTML.cell(c)] + ["precision", "recall", "f1"].map { HTML.valueCell(HTML.number(m[$0] as? Double ?? 0), key: "\(file)#per_class.\(c).\($0)") }
                    + [HTML.valueCell(String(m["support"] as? Int ?? 0), key: "\(file)#per_class.\(c).support")]
            }
            s += "<div class=\"grid\">" + HTML.table(header: ["class", "precision", "recall", "F1", "support"], rows: rows, caption: "per class")
            let normalised = doc["confusion_normalized"] as? [[Double]] ?? confusion.map { r in r.map { Double($0) / Double(max(1, r.reduce(0, +))) } }
            s += try matrixFigure(confusion.map { $0.map(Double.init) }, labels: classes, key: "\(file)#confusion", file: "confusion-\(array)-counts",
                              caption: "confusion, pixel counts (rows: annotated, columns: predicted; colour: log count)", integer: true)
            s += try matrixFigure(normalised, labels: classes, key: "\(file)#confusion_normalized", file: "confusion-\(array)-normalised",
                              caption: "confusion, row-normalised (recall on the diagonal)", integer: false)
            s += "</div>"
        }
        return s.isEmpty ? "" : section("evaluation", "Evaluation", s)
    }

    /// A matrix as an image and as a table with its numbers.
    private func matrixFigure(_ m: [[Double]], labels: [String], key: String, file: String, caption: String, integer: Bool) throws -> String {
        let shown = integer ? m.map { $0.map { log1p($0) } } : m
        let img = Render.matrix(shown, lo: 0, hi: integer ? (shown.flatMap { $0 }.max() ?? 1) : 1)
        let name = try save(img, file)
        let rows = m.enumerated().map { i, r in
            [HTML.headCell(labels[i])] + r.enumerated().map { j, v in
                HTML.valueCell(integer ? String(Int(v)) : HTML.number(v), key: "\(key).\(i).\(j)")
            }
        }
        return "<figure><img src=\"\(name)\" width=\"\(img.width)\" height=\"\(img.height)\" alt=\"\(HTML.escape(caption))\">"
            + HTML.table(header: [""] + labels, rows: rows) + "<figcaption>\(HTML.escape(caption))</figcaption></figure>"
    }

    // MARK: training

    func training(sidecarOverride: String?) -> String {
        guard let (path, doc) = contents.modelSidecar(override: sidecarOverride), let epochs = doc["epochs"] as? [[String: Any]], !epochs.isEmpty else { return "" }
        func series(_ key: String, _ name: String, _ color: RGB) -> Charts.Series {
            Charts.Series(name: name, color: color, points: epochs.map { (Double($0["epoch"] as? Int ?? 0), $0[key] as? Double ?? .nan) })
        }
        let blue = RGB(0x1f, 0x77, 0xb4), orange = RGB(0xff, 0x7f, 0x0e)
        var s = "<p>\(HTML.escape(path)): best epoch <b>\(doc["best_epoch"] as? Int ?? 0)</b>, validation accuracy <b>\(HTML.number(doc["best_val_accuracy"] as? Double ?? 0))</b>, "
            + String(format: "%.0f s of training", epochs.reduce(0.0) { $0 + ($1["seconds"] as? Double ?? 0) }) + "</p><div class=\"grid\">"
        s += Charts.lines([series("train_loss", "train", blue), series("val_loss", "validation", orange)], xLabel: "epoch", yLabel: "cross-entropy loss")
        s += Charts.lines([series("train_accuracy", "train", blue), series("val_accuracy", "validation", orange)], xLabel: "epoch", yLabel: "accuracy")
        return section("training", "Training", s + "</div>")
    }

    // MARK: analysis

    func analysis() -> String {
        var s = ""
        if let pca = contents.result("pca"), let ratio = pca["explained_variance_ratio"] as? [Double] {
            s += "<h3>PCA</h3><p>\(pca["rows"] as? Int ?? 0) pixels; explained variance ratio of the first components (cumulative \(HTML.number(ratio.prefix(3).reduce(0, +))) for PC1–3):</p>"
            s += Charts.groupedBars(groups: ratio.indices.map { "\($0 + 1)" }, bars: [("explained variance ratio", RGB(0x23, 0x39, 0x5b))],
                                    values: ratio.map { [$0] }, xLabel: "component", yLabel: "variance ratio")
        }
        if let nmf = contents.result("nmf") {
            let obj = (nmf["objective_per_pass"] as? [Double] ?? []).map(HTML.format).joined(separator: " → ")
            s += "<h3>NMF</h3><p>k = \(nmf["k"] as? Int ?? 0), non-negativity by <code>\(HTML.escape(nmf["nonneg"] as? String ?? "?"))</code>, "
                + "\(nmf["rows"] as? Int ?? 0) pixels; ½‖X − WH‖² per pass: \(HTML.escape(obj))</p>"
        }
        s += selectFactors() + clusters()
        return s.isEmpty ? "" : section("analysis", "Analysis", s)
    }

    private func roiLabels(_ ids: [Int64], source: String?) -> [(name: String, color: RGB)] {
        let names = source.map(RunContents.roiNames) ?? [:]
        return ids.enumerated().map { (names[$0.element] ?? "ROI \($0.element)", Palette.color($0.offset + 1, .clusters)) }
    }

    private func selectFactors() -> String {
        guard let sel = contents.result("select-factors"), let dist = sel["distribution_factor_over_rois"] as? [[Double]],
              let ids = (sel["roi_ids"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.int64Value }) else { return "" }
        let rois = roiLabels(ids, source: sel["rois"] as? String)
        let picks = sel["picks"] as? [[String: Any]] ?? []
        let picked = Set(picks.compactMap { $0["factor"] as? Int })
        var s = "<h3>Predictive factors (select-factors)</h3><p>Each factor's positive coefficients summed per ROI of <code>\(HTML.escape(sel["rois"] as? String ?? ""))</code>, normalised per factor; "
            + "picked factors in bold (greedy, λ = \(HTML.format(sel["lambda"] as? Double ?? 0))).</p>"
        s += Charts.groupedBars(groups: dist.indices.map { "\($0 + 1)" }, bars: rois, values: dist, xLabel: "NMF factor", yLabel: "fraction of the factor", emphasis: picked)
        s += HTML.legend(rois)
        let rows = picks.map { p -> [String] in
            let roi = (p["roi"] as? NSNumber)?.int64Value ?? 0
            let name = ids.firstIndex(of: roi).map { rois[$0].name } ?? "\(roi)"
            return [HTML.cell("\((p["factor"] as? Int ?? 0) + 1)"), HTML.cell(name)]
                + ["coverage", "leakage", "score"].map { HTML.cell(HTML.number(p[$0] as? Double ?? 0)) }
        }
        return s + HTML.table(header: ["factor", "ROI", "coverage", "leakage", "score"], rows: rows, caption: "picks, in order")
    }

    /// Every clustering's result (`RunContents.clusterings`), each under its own heading.
    private func clusters() -> String { contents.clusterings.map(clustering).joined() }

    private func clustering(_ name: String) -> String {
        guard let cl = contents.result(name) else { return "" }
        let how = contents.clusteringDescription(name)
        var s = "<h3>Clusters" + (name == "clusters" ? "" : ": \(HTML.escape(name))") + "</h3>"
            + "<p>\(HTML.escape(cl["method"] as? String ?? "")) with k = \(cl["k"] as? Int ?? 0) on \(cl["rows"] as? Int ?? 0) pixels"
            + (how.isEmpty ? "" : " (\(HTML.escape(how)))")
        if let sil = cl["silhouette_on_sample"] as? Double { s += "; silhouette \(HTML.number(sil))" }
        if let ari = cl["adjusted_rand_index"] as? Double { s += ", ARI \(HTML.number(ari))" }
        if let v = cl["v_measure"] as? Double { s += ", V-measure \(HTML.number(v))" }
        s += "</p>"
        let identity = cl["identity"] as? [String: Any]
        if let dist = cl["distribution_per_cluster_over_rois"] as? [[Double]],
           let ids = (cl["roi_ids"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.int64Value }) {
            // The ROI source names the ids: from cluster's parameters when recorded, else select-factors.json's when
            // both describe the same ROI ids.
            let selection = contents.result("select-factors")
            let sameIds = (selection?["roi_ids"] as? [Any])?.compactMap { ($0 as? NSNumber)?.int64Value } == ids
            let recorded = (identity?["rois"] as? String) ?? ((contents.steps[name]?["parameters"] as? [String: String])?["rois"])
            let rois = roiLabels(ids, source: recorded ?? (sameIds ? selection?["rois"] as? String : nil))
            s += "<p>Fraction of each cluster's pixels per ROI:</p>" + Charts.groupedBars(groups: dist.indices.map { "\($0 + 1)" }, bars: rois,
                                                                                            values: dist, xLabel: "cluster", yLabel: "fraction of the cluster") + HTML.legend(rois)
        }
        if let m = cl["match"] as? [String: Any], let js = m["js_distance"] as? [[Double]], let sl = m["slices"] as? [Int], sl.count == 2 {
            let argmin = m["argmin"] as? [Int] ?? []
            let rows = js.enumerated().map { i, r in
                // A cluster with no pixel in slice A (argmin −1) has no distances, only the placeholder 1: shown as –.
                argmin.count > i && argmin[i] < 0 ? [HTML.headCell("slice \(sl[0]) cluster \(i + 1) (none in this slice)")] + r.map { _ in HTML.cell("–") } :
                [HTML.headCell("slice \(sl[0]) cluster \(i + 1)")] + r.enumerated().map { j, v in
                    HTML.valueCell(HTML.number(v), key: "\(name).json#match.js_distance.\(i).\(j)", style: argmin.count > i && argmin[i] == j ? "font-weight:700;background:#dfe" : nil)
                }
            }
            s += HTML.table(header: [""] + js.indices.map { "slice \(sl[1]) cluster \($0 + 1)" }, rows: rows,
                            caption: "matching across slices: Jensen–Shannon distance of the per-ROI distributions (bold: nearest)")
        }
        return s
    }

    // MARK: provenance

    func provenance(generatedBy: String, sidecarOverride: String?, wall: Double?) -> String {
        let id = contents.runJSON["identity"] as? [String: Any] ?? [:]
        var items: [(String, String)] = [("run", contents.root)]
        for k in ["source", "source_shape", "model_sha256", "mode", "stride", "mask", "outputs", "dtype", "block", "tile", "engine"] {
            if let v = id[k] { items.append((k, "\(v)")) }
        }
        let info = contents.predictInfo
        if let m = info["model"] { items.append(("model", m)) }
        let versions = info.filter { ["brainmap", "openblas"].contains($0.key) }
        if !versions.isEmpty { items.append(("versions (predict)", versions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; "))) }
        if let c = info["command_line"] { items.append(("predict command", c)) }
        if let (path, doc) = contents.modelSidecar(override: sidecarOverride) {
            items.append(("model sidecar", path))
            if let p = doc["parameters"] as? [String: Any] { items.append(("training parameters", flat(p))) }
            if let d = doc["data"] as? [String: Any] {
                items.append(("training data", ["volume", "annotations", "train_slices", "val_slices", "label_map_name"].compactMap { k in d[k].map { "\(k) \(flat($0))" } }.joined(separator: "; ")))
            }
        }
        let steps = contents.steps
        if !steps.isEmpty {
            // Format 2: every step's parameters, generation and time, from the manifest.
            let order = ["predict", "evaluate-labels", "cleanup", "evaluate-labels_clean", "pca", "nmf", "clusters", "select-factors"]
            for name in steps.keys.sorted(by: { (order.firstIndex(of: $0) ?? 99, $0) < (order.firstIndex(of: $1) ?? 99, $1) }) where name != "predict" {
                let st = steps[name]!
                let when = (st["updated"] as? String).map { ", \($0)" } ?? ""
                items.append(("\(name) (generation \(st["generation"] as? Int ?? 0)\(when))", flat(st["parameters"] ?? [:])))
            }
        } else {
            // Format 1: parameters in the result files.
            if let c = contents.result("cleanup") { items.append(("cleanup", flat(c))) }
            for name in ["pca", "nmf", "clusters", "select-factors"] {
                guard let r = contents.result(name) else { continue }
                if let idn = r["identity"] as? [String: Any] { items.append(("\(name) parameters", flat(idn))) }
                else if name == "select-factors" { items.append(("select-factors parameters", "on \(r["on"] ?? "?"); rois \(r["rois"] ?? "?"); lambda \(r["lambda"] ?? "?")")) }
            }
        }
        items.append(("report", generatedBy + (wall.map { String(format: ", images made in %.1f s", $0) } ?? "")))
        let dl = "<dl>" + items.map { "<dt>\(HTML.escape($0.0))</dt><dd>\(HTML.escape($0.1))</dd>" }.joined() + "</dl>"
        return section("provenance", "Provenance", dl)
    }

    /// A JSON value as one line ("key value; …", arrays comma-separated).
    private func flat(_ v: Any) -> String {
        switch v {
        case let d as [String: Any]: return d.sorted { $0.key < $1.key }.map { "\($0.key) \(flat($0.value))" }.joined(separator: "; ")
        case let a as [Any]: return a.map(flat).joined(separator: ",")
        default: return "\(v)"
        }
    }

    func section(_ id: String, _ title: String, _ body: String) -> String {
        "<section id=\"\(id)\"><h2>\(HTML.escape(title))</h2>\(body)</section>"
    }
}
