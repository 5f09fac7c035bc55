import Foundation
import VolumeStore

/// The images of one slice (or of a crop of it): raw, label maps over it, entropy, PC1–3 as RGB, each NMF factor,
/// clusters; each array read once, downsampled while streaming. Returns the slice's HTML.
struct SliceFigures {
    let view: SliceView
    let contents: RunContents
    let arrays: [RunContents.ArrayName: ZarrArray]
    /// Every clustering of the run (`RunContents.clusterings`), in that order.
    let clusterings: [(name: String, array: ZarrArray)]
    let raw: ZarrArray?
    let out: String
    let sharedFactorScale: Bool
    /// File names of the images written, relative to `out`.
    private(set) var images: [String] = []
    /// Seconds spent per image (read, render, write), for the progress line.
    private(set) var timings: [(String, Double)] = []
    private var clock = Date()

    init(view: SliceView, contents: RunContents, arrays: [RunContents.ArrayName: ZarrArray], clusterings: [(name: String, array: ZarrArray)],
         raw: ZarrArray?, out: String, sharedFactorScale: Bool) {
        self.view = view; self.contents = contents; self.arrays = arrays; self.clusterings = clusterings; self.raw = raw; self.out = out; self.sharedFactorScale = sharedFactorScale
    }

    private var w: Int { view.width }
    private var h: Int { view.height }

    private mutating func save(_ img: Image, _ name: String) throws -> String {
        let file = fileName(name)
        try img.writePNG(to: out + "/" + file)
        images.append(file)
        timings.append((name, Date().timeIntervalSince(clock)))
        clock = Date()
        return file
    }

    /// The image's file, relative to `out`.
    private func fileName(_ name: String) -> String { "z\(view.z)-\(name).png" }

    mutating func render() async throws -> String {
        clock = Date()
        var figs: [String] = []
        var grey: Image?
        if let raw {
            let g = Render.grey(try await SliceReader.mean(raw, view: view, scale: contents.stride), width: w, height: h)
            grey = g
            figs.append(HTML.figure(try save(g, "raw"), caption: "raw (mean of each pixel's footprint, 0.5–99.5th percentile stretch)", width: w, height: h))
        }
        let classLegend = HTML.legend(contents.classNames.sorted { $0.key < $1.key }.map { ($0.value, Palette.color($0.key, .classes)) })
        for name in [RunContents.ArrayName.labels, .labelsClean] {
            guard let a = arrays[name] else { continue }
            let ids = try await SliceReader.centres(a, view: view)
            let img = Render.overlay(ids, over: grey, width: w, height: h, palette: .classes)
            figs.append(HTML.figure(try save(img, name.rawValue), caption: name == .labels ? "labels (predicted areas)" : "labels_clean (after cleanup, Algorithm 1)",
                                    width: w, height: h, legend: classLegend))
        }
        if let a = arrays[.entropy] {
            let e = try await SliceReader.mean(a, view: view)
            let hi = Float(log(6.0))
            figs.append(HTML.figure(try save(Render.heatmap(e[...], width: w, height: h, lo: 0, hi: hi), "entropy"),
                                    caption: "entropy of the class probabilities (nats)", width: w, height: h, legend: HTML.colorbar(lo: 0, hi: Double(hi))))
        }
        if let a = arrays[.anomaly] {
            let e = try await SliceReader.mean(a, view: view)
            let (lo, hi) = Render.quantiles(e[...], 0.01, 0.99) ?? (0, 1)
            figs.append(HTML.figure(try save(Render.heatmap(e[...], width: w, height: h, lo: lo, hi: hi), "anomaly"),
                                    caption: "anomaly: Mahalanobis distance of the latents to the predicted class's training distribution (1st–99th percentile)",
                                    width: w, height: h, legend: HTML.colorbar(lo: Double(lo), hi: Double(hi))))
        }
        if let a = arrays[.pca], a.shape.count == 4, a.shape[0] >= 3 {
            let pcs = try await SliceReader.mean(a, view: view, channels: 0..<3)
            let n = w * h
            let ranges = (0..<3).map { Render.quantiles(pcs[($0 * n)..<(($0 + 1) * n)], 0.01, 0.99) ?? (0, 1) }
            let rangeText = ranges.enumerated().map { "PC\($0.offset + 1) \(HTML.format(Double($0.element.0)))…\(HTML.format(Double($0.element.1)))" }.joined(separator: ", ")
            figs.append(HTML.figure(try save(Render.composite(pcs, width: w, height: h, ranges: ranges), "pca-rgb"),
                                    caption: "PC1, PC2, PC3 as red, green, blue (each 1st–99th percentile: \(rangeText))", width: w, height: h))
        }
        var html = "<div class=\"grid\">" + figs.joined() + "</div>"
        if let a = arrays[.nmf], a.shape.count == 4 {
            html += try await factors(a)
        }
        var clusterFigures = ""
        for (name, a) in clusterings {
            let ids = try await SliceReader.centres(a, view: view)
            let k = Int(ids.max() ?? 0)
            let legend = HTML.legend((1..<(max(k, 1) + 1)).map { ("cluster \($0)", Palette.color($0, .clusters)) })
            let how = contents.clusteringDescription(name)
            clusterFigures += HTML.figure(try save(Render.overlay(ids, over: grey, width: w, height: h, palette: .clusters), name),
                                          caption: "\(name) over the raw" + (how.isEmpty ? "" : " (\(how))"), width: w, height: h, legend: legend)
        }
        if !clusterFigures.isEmpty { html += "<h3>Clusters</h3><div class=\"grid\">" + clusterFigures + "</div>" }
        return html
    }

    /// Every NMF factor as a heatmap (0 to the 99.5th percentile of that factor, or of all factors with a shared
    /// scale), in a grid of smaller figures.
    private mutating func factors(_ a: ZarrArray) async throws -> String {
        let k = a.shape[0], n = w * h
        let planes = try await SliceReader.mean(a, view: view, channels: 0..<k)
        let his = (0..<k).map { Render.quantiles(planes[($0 * n)..<(($0 + 1) * n)], 0, 0.995)?.1 ?? 1 }
        let shared = his.max() ?? 1
        let scale = (0..<k).map { max(sharedFactorScale ? shared : his[$0], 1e-12) }
        // The k heatmaps are independent: rendered and PNG-encoded two at a time (encoding dominates).
        let (view, out) = (self.view, self.out)
        let files = (0..<k).map { fileName("nmf-\($0 + 1)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for f in 0..<k {
                if f >= 2 { try await group.next() }
                group.addTask {
                    let img = Render.heatmap(planes[(f * n)..<((f + 1) * n)], width: view.width, height: view.height, lo: 0, hi: scale[f])
                    try img.writePNG(to: out + "/" + files[f])
                }
            }
            try await group.waitForAll()
        }
        var s = "<h3>NMF factors (\(sharedFactorScale ? "one scale for all factors" : "each factor on its own scale"))</h3><div class=\"grid\">"
        for f in 0..<k {
            images.append(files[f])
            s += "<div class=\"small\">" + HTML.figure(files[f], caption: "factor \(f + 1)", width: w, height: h, legend: HTML.colorbar(lo: 0, hi: Double(scale[f]))) + "</div>"
        }
        timings.append(("nmf", Date().timeIntervalSince(clock)))
        clock = Date()
        return s + "</div>"
    }
}
