import Foundation
import TestSupport
import XCTest
@testable import Report

/// `brainmap report` on a real small run: the page in a real browser, the images against the arrays (numpy,
/// zarr-python, PIL), the numbers against the result files.
final class ReportTests: XCTestCase {
    /// The report of the fixture run at a width that forces downsampling (the run grid is 100 × 130).
    static let width = 96

    func makeReport(_ extra: [String] = [], out: String) throws -> BrainmapCLI.Result {
        let f = try ReportFixture.run()
        return try ReportFixture.cli(["report", f.run, "--out", out, "--width", "\(Self.width)"] + extra, f.dir)
    }

    func testPageLoadsInChromiumWithEveryImageAndTheEvaluationNumbers() throws {
        let f = try ReportFixture.run()
        let out = f.dir + "/report-browser"
        let r = try makeReport(out: out)
        XCTAssertTrue(r.stdout.contains("report: \(out)/index.html"), r.stdout)
        let scratch = PythonReference.tempDir("chromium")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let (images, keys) = try Chromium.probe(page: out + "/index.html", scratch: scratch)

        // Every image of every step: per slice raw, labels, labels_clean, entropy, PC RGB, 3 NMF factors, both clusterings;
        // the colour bars; two confusion images per evaluation.
        let srcs = images.compactMap { $0["src"] as? String }
        for z in 0..<2 {
            for n in ["raw", "labels", "labels_clean", "entropy", "pca-rgb", "nmf-1", "nmf-2", "nmf-3", "clusters", "clusters_pcs"] {
                XCTAssertTrue(srcs.contains("z\(z)-\(n).png"), "slice \(z): \(n) missing from the page")
            }
        }
        for a in ["labels", "labels_clean"] { for k in ["counts", "normalised"] { XCTAssertTrue(srcs.contains("confusion-\(a)-\(k).png")) } }
        for img in images {
            XCTAssertEqual(img["complete"] as? Bool, true, "\(img)")
            XCTAssertGreaterThan(img["w"] as? Int ?? 0, 0, "broken image \(img)")
            XCTAssertGreaterThan(img["h"] as? Int ?? 0, 0, "broken image \(img)")
        }

        // The sections of every step the fixture ran, the training curves from the model's sidecar among them.
        let page = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        for id in ["slice-0", "slice-1", "evaluation", "training", "analysis", "provenance"] { XCTAssertTrue(page.contains("<section id=\"\(id)\">"), id) }
        XCTAssertTrue(page.contains("w.json: best epoch <b>4</b>"), "training curves from the sidecar beside the model")
        // Each clustering under its own heading, saying what it was computed on.
        XCTAssertTrue(page.contains("<h3>Clusters: clusters_pcs</h3><p>gmm with k = 4 on "), "the second clustering's result")
        XCTAssertTrue(page.contains("clusters_pcs over the raw (on pca 1,2,3, under labels)"), "its figure's caption")
        for name in ["L1", "L2/3", "L6"] { XCTAssertTrue(page.contains(">\(name)<"), "ROI \(name) named from the phantom's attributes") }

        // Every number that names its source equals that source, as the page formats it.
        var checked = 0
        for kv in keys {
            let (key, text) = (kv[0], kv[1])
            let parts = key.split(separator: "#", maxSplits: 1).map(String.init)
            let file = parts[0].hasPrefix("clusters") ? f.run + "/analysis/" + parts[0] : f.run + "/" + parts[0]
            var v: Any = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file)))
            for p in parts[1].split(separator: ".").map(String.init) {
                if let d = v as? [String: Any], let n = d[p] { v = n } else if let a = v as? [Any], let i = Int(p), i < a.count { v = a[i] } else { XCTFail("\(key): no \(p) in \(file)"); break }
            }
            let n = (v as? NSNumber)?.doubleValue ?? .nan
            XCTAssertEqual(text, text.contains(".") ? String(format: "%.4f", n) : String(Int(n)), key)
            checked += 1
        }
        // accuracy, macro F1, pixels, 6 × 4 per class, 2 × 36 confusion cells per evaluation; 3 × 3 JS distances.
        XCTAssertEqual(checked, 2 * (3 + 24 + 72) + 9)

        // A screenshot of the page as a reader sees it.
        let shot = PythonReference.packageRoot.appendingPathComponent(".build/report-test-screenshot.png").path
        try? FileManager.default.removeItem(atPath: shot)
        _ = try Chromium.run(["--screenshot=\(shot)", "--window-size=1280,2200", "--hide-scrollbars", "file://\(out)/index.html"], scratch: scratch + "/shot")
        let (sw, sh) = try ReportFixture.pngSize(shot)
        XCTAssertEqual(sw, 1280); XCTAssertEqual(sh, 2200)
        print("report screenshot: \(shot)")
    }

    func testImagesShowTheArraysAsNumpyDownsamplesThem() throws {
        let f = try ReportFixture.run()
        let out = f.dir + "/report-content"
        _ = try makeReport(out: out)
        for z in 0..<2 {
            let text = try PythonReference.run("tools/reference/report_check.py", [f.run, out, "\(z)", "\(Self.width)"])
            let m = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            XCTAssertEqual(m["size"] as? [Int], [96, 74])
            XCTAssertEqual(m["raw_size"] as? [Int], [96, 74])
            // Raw: a linear stretch of the mean of each pixel's footprint in the source (rounding only).
            XCTAssertLessThanOrEqual(m["raw_max_residual"] as! Double, 1.0)
            XCTAssertGreaterThan(m["raw_correlation"] as! Double, 0.999)
            // Overlays: each pixel's colour is its label's (centre of the footprint) blended with the grey.
            for n in ["labels", "labels_clean", "clusters"] {
                XCTAssertLessThanOrEqual(m[n + "_max_error"] as! Double, 1.0, "\(n) overlay, slice \(z)")
                XCTAssertGreaterThan(m[n + "_labelled_pixels"] as! Int, 500, n)
            }
            XCTAssertGreaterThan((m["labels_ids"] as! [Int]).count, 4, "the fixture's labels show most classes")
            XCTAssertGreaterThan((m["clusters_ids"] as! [Int]).count, 2)
            // Entropy in viridis on the fixed 0…ln 6 scale; NaN transparent.
            XCTAssertEqual(m["entropy_transparent_where_nan"] as? Bool, true)
            XCTAssertLessThanOrEqual(m["entropy_index_max_error"] as! Double, 1)
            XCTAssertEqual(m["entropy_colour_distance_max"] as! Double, 0)
            // PC1–3 composite: each channel is its component, linearly.
            for (c, r) in zip(m["pca_correlation"] as! [Double], m["pca_max_residual"] as! [Double]) {
                XCTAssertGreaterThan(c, 0.999); XCTAssertLessThanOrEqual(r, 1.0)
            }
            XCTAssertEqual(m["pca_transparent_where_nan"] as? Bool, true)
            // NMF factors: colour index proportional to the coefficient (rounding, and a few neighbouring viridis
            // entries that share one 8-bit colour, so the index read back may be one lower).
            for r in m["nmf_max_residual"] as! [Double] { XCTAssertLessThanOrEqual(r, 1.5) }
        }
    }

    func testCropIsShownAtFullResolution() throws {
        let f = try ReportFixture.run()
        let out = f.dir + "/report-crop"
        let r = try makeReport(["--crop", "40:120,60:200", "--slices", "1"], out: out)
        XCTAssertTrue(r.stdout.contains("for slices 1 "), r.stdout)
        // Source rows 40–120, columns 60–200 at stride 2: run rows 20–60, columns 30–100, one image pixel each.
        for n in ["raw", "labels", "nmf-1"] { let (w, h) = try ReportFixture.pngSize("\(out)/z1-\(n).png"); XCTAssertEqual([w, h], [70, 40], n) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/z0-raw.png"))
        // A crop beyond the slice is refused, naming the extent.
        let bad = try BrainmapCLI.run(["report", f.run, "--out", out, "--crop", "5000:6000,0:10"], logDir: f.dir, tag: "badcrop")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("lies outside the run's source extent (200×260 pixels)"), bad.stderr)
    }

    func testStepsNotRunAreAbsentAndAMissingRawIsNoted() throws {
        let f = try ReportFixture.run()
        // A run with predict's outputs only, whose source has gone.
        let run = f.dir + "/bare.zarr"
        try? FileManager.default.removeItem(atPath: run)
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        for item in [".zgroup", ".zattrs", "labels", "entropy"] { try FileManager.default.copyItem(atPath: f.run + "/" + item, toPath: run + "/" + item) }
        var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.run + "/run.json"))) as! [String: Any]
        var id = doc["identity"] as! [String: Any]; id["source"] = f.dir + "/gone.zarr/raw"; doc["identity"] = id
        // Only predict recorded, with a model that has no sidecar (run.json format 2; format 1 keeps `model` on top).
        let none = f.dir + "/none.safetensors"
        if let steps = doc["steps"] as? [String: Any], var predict = steps["predict"] as? [String: Any] {
            var info = predict["info"] as? [String: Any] ?? [:]
            info["model"] = none; predict["info"] = info
            doc["steps"] = ["predict": predict]
            doc["arrays"] = (doc["arrays"] as? [String: Any] ?? [:]).filter { ["labels", "entropy"].contains($0.key) }
        } else { doc["model"] = none }
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: run + "/run.json"))
        let out = f.dir + "/report-bare"
        let r = try ReportFixture.cli(["report", run, "--out", out, "--width", "64"], f.dir)
        XCTAssertTrue(r.stdout.contains("note: raw not shown"), r.stdout)
        let page = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertEqual(files, ["colorbar-viridis.png", "z0-entropy.png", "z0-labels.png", "z1-entropy.png", "z1-labels.png"])
        for absent in ["NMF", "id=\"evaluation\"", "id=\"training\"", "id=\"analysis\"", "labels_clean", "clusters"] {
            XCTAssertFalse(page.contains(absent), "\(absent) should be absent")
        }
        XCTAssertTrue(page.contains("id=\"provenance\""))
        // An anomaly evaluation (evaluate --anomaly-truth) shows its ROC AUC.
        try JSONSerialization.data(withJSONObject: ["roc_auc": 0.947, "anomalous_pixels": 120, "normal_pixels": 9000, "mean_anomaly_anomalous": 30.5,
                                                    "mean_anomaly_normal": 8.25, "slices": [1], "truth": "/x/ph.zarr/anomaly"])
            .write(to: URL(fileURLWithPath: run + "/evaluation-anomaly.json"))
        _ = try ReportFixture.cli(["report", run, "--out", out, "--width", "64"], f.dir)
        let withAUC = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        XCTAssertTrue(withAUC.contains("ROC AUC <b><span data-key=\"evaluation-anomaly.json#roc_auc\">0.9470</span></b> of the anomaly map: 120 anomalous"), withAUC)
    }

    /// Results whose inputs changed since (here: pca's predicted slices) are drawn as they are on disk; the page says
    /// at its top what is not up to date, as `brainmap status` does. An up-to-date run has no such box.
    func testStaleResultsAreFlagged() throws {
        let f = try ReportFixture.run()
        let current = try ReportFixture.cli(["report", f.run, "--out", f.dir + "/report-current", "--width", "64"], f.dir)
        XCTAssertFalse(current.stdout.contains("not up to date"), current.stdout)
        XCTAssertFalse(try String(contentsOfFile: f.dir + "/report-current/index.html", encoding: .utf8).contains("Not up to date"))
        let run = f.dir + "/stale.zarr"
        try? FileManager.default.removeItem(atPath: run)
        try FileManager.default.copyItem(atPath: f.run, toPath: run)
        var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/run.json"))) as! [String: Any]
        var steps = doc["steps"] as! [String: Any], pca = steps["pca"] as! [String: Any]
        pca["inputs"] = (pca["inputs"] as! [String: String]).mapValues { _ in "p0.changed" }
        steps["pca"] = pca; doc["steps"] = steps
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: run + "/run.json"))
        let r = try ReportFixture.cli(["report", run, "--out", f.dir + "/report-stale", "--width", "64"], f.dir)
        XCTAssertTrue(r.stdout.contains("note: not up to date"), r.stdout)
        let page = try String(contentsOfFile: f.dir + "/report-stale/index.html", encoding: .utf8)
        XCTAssertTrue(page.contains("<div class=\"stale\"><b>Not up to date</b>"), page)
        XCTAssertTrue(page.contains("<li>pca (its inputs changed)"), page)
        XCTAssertTrue(page.contains("<li>clusters_pcs (reads a stale step)"), page)
    }

    func testAMissingRunIsAnErrorThatSaysWhatToDo() throws {
        let f = try ReportFixture.run()
        let r = try BrainmapCLI.run(["report", f.dir + "/nothing.zarr"], logDir: f.dir, tag: "missing")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("not a brainmap run (no readable run.json)"), r.stderr)
    }
}
