import Foundation

/// Charts as inline SVG (crisp at any zoom, text included, nothing to load): line charts for training curves,
/// grouped bars for distributions over ROIs.
enum Charts {
    struct Series { var name: String; var color: RGB; var points: [(x: Double, y: Double)] }

    private static let left = 46.0, right = 12.0, top = 12.0, bottom = 34.0

    /// Lines over a shared x axis, with y from 0 (or the data's minimum if negative) to the data's maximum.
    static func lines(_ series: [Series], xLabel: String, yLabel: String, width: Double = 420, height: Double = 240) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        guard let x0 = xs.min(), let x1 = xs.max(), let yMax = ys.max() else { return "" }
        let y0 = min(0, ys.min() ?? 0), y1 = yMax > y0 ? yMax : y0 + 1
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        var s = svgOpen(width, height) + axes(width: width, height: height, xLabel: xLabel, yLabel: yLabel)
        s += tick(y: py(y0), HTML.format(y0)) + tick(y: py(y1), HTML.format(y1))
        s += "<text x=\"\(f(left))\" y=\"\(f(height - 20))\" text-anchor=\"middle\">\(HTML.format(x0))</text>"
        s += "<text x=\"\(f(left + pw))\" y=\"\(f(height - 20))\" text-anchor=\"middle\">\(HTML.format(x1))</text>"
        for (i, ser) in series.enumerated() {
            let pts = ser.points.filter { $0.y.isFinite }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(ser.color.hex)\" stroke-width=\"1.8\" points=\"\(pts)\"/>"
            s += "<rect x=\"\(f(left + 8))\" y=\"\(f(top + 4 + 14 * Double(i)))\" width=\"10\" height=\"3\" fill=\"\(ser.color.hex)\"/>"
            s += "<text x=\"\(f(left + 22))\" y=\"\(f(top + 9 + 14 * Double(i)))\">\(HTML.escape(ser.name))</text>"
        }
        return s + "</svg>"
    }

    /// Bars in groups (one group per row of `values`, one bar per column, coloured by column), y from 0 to the
    /// largest value; `emphasis` marks groups whose label is drawn bold.
    static func groupedBars(groups: [String], bars: [(name: String, color: RGB)], values: [[Double]], xLabel: String, yLabel: String,
                            emphasis: Set<Int> = [], height: Double = 220) -> String {
        guard !groups.isEmpty, !bars.isEmpty else { return "" }
        let barW = 7.0, gap = 8.0
        let groupW = barW * Double(bars.count) + gap
        let width = max(160, left + right + groupW * Double(groups.count))
        let yMax = max(values.flatMap { $0 }.filter(\.isFinite).max() ?? 1, 1e-12)
        let ph = height - top - bottom
        var s = svgOpen(width, height) + axes(width: width, height: height, xLabel: xLabel, yLabel: yLabel)
        s += tick(y: top + ph, "0") + tick(y: top, HTML.format(yMax))
        for (g, name) in groups.enumerated() {
            let gx = left + gap / 2 + Double(g) * groupW
            for (b, bar) in bars.enumerated() where b < values[g].count {
                let v = values[g][b], h = v.isFinite ? max(0, v) / yMax * ph : 0
                s += "<rect x=\"\(f(gx + Double(b) * barW))\" y=\"\(f(top + ph - h))\" width=\"\(f(barW - 1))\" height=\"\(f(h))\" fill=\"\(bar.color.hex)\"><title>\(HTML.escape(name)), \(HTML.escape(bar.name)): \(HTML.number(v))</title></rect>"
            }
            let weight = emphasis.contains(g) ? " font-weight=\"700\"" : ""
            s += "<text x=\"\(f(gx + groupW / 2 - gap / 2))\" y=\"\(f(height - 20))\" text-anchor=\"middle\"\(weight)>\(HTML.escape(name))</text>"
        }
        return s + "</svg>"
    }

    private static func svgOpen(_ w: Double, _ h: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(w))\" height=\"\(f(h))\" viewBox=\"0 0 \(f(w)) \(f(h))\" style=\"background:#fff;border:1px solid #ddd\">"
    }

    private static func axes(width: Double, height: Double, xLabel: String, yLabel: String) -> String {
        let x1 = width - right, y1 = height - bottom
        return "<path d=\"M\(f(left)),\(f(top)) V\(f(y1)) H\(f(x1))\" stroke=\"#888\" fill=\"none\"/>"
            + "<text x=\"\(f((left + x1) / 2))\" y=\"\(f(height - 4))\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
            + "<text transform=\"translate(11,\(f((top + y1) / 2))) rotate(-90)\" text-anchor=\"middle\">\(HTML.escape(yLabel))</text>"
    }

    private static func tick(y: Double, _ label: String) -> String {
        "<text x=\"\(f(left - 4))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(HTML.escape(label))</text>"
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
