import Foundation
import TestSupport
import XCTest

/// `brainmap serve` as a user runs it: zarr-python reads the run over HTTP identically to disk; ranges and CORS work;
/// the printed Neuroglancer state points at URLs the server answers.
final class ServeTests: XCTestCase {
    func testZarrPythonReadsAServedRunIdentically() throws {
        let f = try ReportFixture.run()
        let p = try BrainmapCLI.start(["serve", f.run, "--port", "0", "--quiet"], logDir: f.dir, tag: "serve")
        defer { p.terminate(); p.waitUntilExit() }
        // The first line says where it listens.
        var url = ""
        for _ in 0..<300 {
            let out = (try? String(contentsOfFile: f.dir + "/serve.out", encoding: .utf8)) ?? ""
            if out.contains("Neuroglancer link:"), let r = out.range(of: "serving \(f.run) at ") {
                url = String(out[r.upperBound...].prefix { $0 != "\n" }); break
            }
            usleep(100_000)
        }
        XCTAssertTrue(url.hasPrefix("http://127.0.0.1:"), "serve printed no URL")

        // The Neuroglancer state it printed: raw (served at /source/), labels and an NMF factor.
        let out = try String(contentsOfFile: f.dir + "/serve.out", encoding: .utf8)
        let start = out.range(of: "):\n")!.upperBound, end = out.range(of: "\nNeuroglancer link:")!.lowerBound
        let state = try JSONSerialization.jsonObject(with: Data(out[start..<end].utf8)) as! [String: Any]
        let layers = state["layers"] as! [[String: Any]]
        XCTAssertEqual(layers.map { $0["name"] as! String }, ["raw", "labels", "NMF factor 1"])
        var metadata: [String] = []
        for l in layers {
            let src = (l["source"] as? String) ?? ((l["source"] as? [String: Any])?["url"] as? String) ?? ""
            XCTAssertTrue(src.hasPrefix("zarr://" + url), src)
            metadata.append(String(src.dropFirst("zarr://".count)) + "/.zattrs")   // the raw's and the outputs' OME image groups
        }
        XCTAssertTrue(out.contains("#!%7B"), "a link carrying the state")

        let text = try PythonReference.run("tools/interop/serve_check.py", [url, f.run] + metadata)
        let m = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        XCTAssertEqual(m["state_urls"] as? [Int], metadata.map { _ in 200 }, "every layer of the state answers")
        let arrays = m["arrays"] as! [String]
        XCTAssertEqual(Set(arrays), ["labels", "labels_clean", "probabilities", "features", "entropy", "pca", "nmf", "clusters", "clusters_pcs"])
        for (name, same) in m["identical"] as! [String: Bool] { XCTAssertTrue(same, "\(name) differs over HTTP") }
        XCTAssertEqual(m["attributes_equal"] as? Bool, true)
        let range = m["range"] as! [String: Any]
        XCTAssertEqual(range["status"] as? Int, 206)
        XCTAssertEqual(range["content_range"] as? String, range["expected_content_range"] as? String)
        XCTAssertEqual(range["body_matches"] as? Bool, true)
        XCTAssertEqual(range["suffix_matches"] as? Bool, true)
        XCTAssertEqual(range["unsatisfiable_status"] as? Int, 416)
        XCTAssertEqual(range["accept_ranges"] as? String, "bytes")
        let cors = m["cors"] as! [String: Any]
        for k in ["get", "range", "missing", "preflight_origin"] { XCTAssertEqual(cors[k] as? String, "*", k) }
        XCTAssertEqual(cors["missing_status"] as? Int, 404)
        XCTAssertEqual(cors["preflight_status"] as? Int, 204)
        XCTAssertEqual((cors["preflight_headers"] as? String)?.lowercased(), "range")
        XCTAssertTrue((cors["exposed"] as? String ?? "").contains("Content-Range"))

    }
}
