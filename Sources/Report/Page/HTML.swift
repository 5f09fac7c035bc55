import Foundation

/// Small helpers for writing the page by hand: escaping, number formats, tables. The page is plain HTML with inline
/// CSS and SVG, no scripts and nothing fetched, so it opens from disk anywhere.
enum HTML {
    static func escape(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.count)
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(ch)
            }
        }
        return o
    }

    /// A fraction or score as the page shows it (4 decimals): the tests compare page text to the JSON through this.
    static func number(_ v: Double) -> String { String(format: "%.4f", v) }
    static func count(_ v: Int) -> String { String(v) }

    /// A table cell holding a value from a result file; `key` ("evaluation-labels.json#accuracy") says which, so a
    /// reader (or a test) can trace every number on the page to its source.
    static func valueCell(_ text: String, key: String, style: String? = nil) -> String {
        "<td data-key=\"\(escape(key))\"\(style.map { " style=\"\($0)\"" } ?? "")>\(escape(text))</td>"
    }

    static func table(header: [String], rows: [[String]], caption: String? = nil) -> String {
        var s = "<table>"
        if let caption { s += "<caption>\(escape(caption))</caption>" }
        s += "<tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
        for r in rows { s += "<tr>" + r.joined() + "</tr>" }
        return s + "</table>"
    }

    static func cell(_ text: String) -> String { "<td>\(escape(text))</td>" }
    static func headCell(_ text: String) -> String { "<th>\(escape(text))</th>" }

    /// A figure: the image (a link to itself at full size), its caption, an optional legend below.
    static func figure(_ src: String, caption: String, width: Int, height: Int, legend: String = "") -> String {
        "<figure><a href=\"\(escape(src))\"><img src=\"\(escape(src))\" width=\"\(width)\" height=\"\(height)\" alt=\"\(escape(caption))\" loading=\"eager\"></a>"
            + "<figcaption>\(escape(caption))\(legend)</figcaption></figure>"
    }

    /// Colour swatches with names (class and cluster legends).
    static func legend(_ items: [(name: String, color: RGB)]) -> String {
        "<div class=\"legend\">" + items.map { "<span><i style=\"background:\($0.color.hex)\"></i>\(escape($0.name))</span>" }.joined() + "</div>"
    }

    /// The shared viridis bar with a map's range at its ends.
    static func colorbar(lo: Double, hi: Double, unit: String = "") -> String {
        "<div class=\"cbar\"><span>\(escape(format(lo)))</span><img src=\"colorbar-viridis.png\" width=\"160\" height=\"10\" alt=\"viridis colour bar\"><span>\(escape(format(hi)))\(unit.isEmpty ? "" : " " + escape(unit))</span></div>"
    }

    /// A compact number for axis ends and colour bars.
    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e6 { return String(Int(v)) }
        let a = abs(v)
        return a >= 1000 || a < 0.01 ? String(format: "%.2e", v) : String(format: a >= 10 ? "%.1f" : "%.3f", v)
    }

    static let style = """
    body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
    header{background:#23395b;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.85}
    nav{padding:8px 24px;background:#e8edf3;position:sticky;top:0;z-index:1}nav a{margin-right:14px;color:#23395b}
    section{padding:8px 24px 24px;border-bottom:1px solid #ddd}h2{font-size:18px;margin:16px 0 8px}h3{font-size:15px;margin:14px 0 6px}
    .grid{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
    figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;max-width:100%}
    figure img{display:block;max-width:100%;height:auto;image-rendering:auto;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
    .small img{max-width:300px}figcaption{font-size:12px;color:#444;margin-top:4px;max-width:900px}
    .legend span{display:inline-block;margin:2px 10px 0 0}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border:1px solid #0003}
    .cbar{display:flex;align-items:center;gap:6px;font-size:11px;margin-top:3px}.cbar img{border:1px solid #0003}
    table{border-collapse:collapse;margin:6px 0 12px;background:#fff}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
    th{background:#eef1f5}caption{text-align:left;font-weight:600;padding:4px 0}td:first-child,th:first-child{text-align:left}
    dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}dt{font-weight:600}dd{margin:0;word-break:break-all}
    svg text{font:11px system-ui,sans-serif;fill:#333}.note{color:#666;font-size:12px}.stale{border:2px solid #c60;background:#fff4e5;padding:6px 10px;margin:8px 0;font-size:13px}
    """
}
