import Foundation
import XCTest

/// Debian's chromium, headless, on files from disk (tools/test.sh installs it).
enum Chromium {
    static var binary: String? { ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) } }

    /// Runs chromium headless with `args` and returns its stdout.
    static func run(_ args: [String], scratch: String) throws -> String {
        guard let binary else { throw NSError(domain: "Chromium", code: 1, userInfo: [NSLocalizedDescriptionKey: "chromium not installed; run tools/test.sh (it installs it)"]) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--allow-file-access-from-files",
                       "--user-data-dir=\(scratch)/profile", "--virtual-time-budget=15000"] + args
        let out = scratch + "/chromium.out", err = scratch + "/chromium.err"
        FileManager.default.createFile(atPath: out, contents: nil); FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out); p.standardError = FileHandle(forWritingAtPath: err)
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate(); throw NSError(domain: "Chromium", code: 2, userInfo: [NSLocalizedDescriptionKey: "chromium did not finish in 120 s"]) }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "Chromium", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey:
                "chromium failed: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")"])
        }
        return text
    }

    /// Loads `page` (a file) with a probe script appended that, once everything has loaded, writes into the DOM each
    /// image's state and the text of every element with a data-key; returns that record.
    static func probe(page: String, scratch: String) throws -> (images: [[String: Any]], keys: [[String]]) {
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let script = """
        <script>window.addEventListener('load', () => {
          const imgs = [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}));
          const keys = [...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.textContent]);
          const pre = document.createElement('pre'); pre.id = 'bm-probe'; pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify({imgs, keys}))));
          document.body.appendChild(pre);
        });</script>
        """
        let probed = (page as NSString).deletingLastPathComponent + "/probe.html"
        try html.replacingOccurrences(of: "</body>", with: script + "</body>").write(toFile: probed, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: probed) }
        let dom = try run(["--dump-dom", "file://" + probed], scratch: scratch)
        guard let r = dom.range(of: "<pre id=\"bm-probe\">"), let e = dom.range(of: "</pre>", range: r.upperBound..<dom.endIndex),
              let data = Data(base64Encoded: String(dom[r.upperBound..<e.lowerBound])),
              let doc = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "Chromium", code: 3, userInfo: [NSLocalizedDescriptionKey: "the probe did not run; DOM:\n\(dom.prefix(2000))"])
        }
        return (doc["imgs"] as? [[String: Any]] ?? [], doc["keys"] as? [[String]] ?? [])
    }
}
