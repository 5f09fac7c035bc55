import Foundation
import Run
import VolumeStore

public struct ReportOptions: Sendable {
    public var run: String
    /// Output directory (default: RUN without `.zarr`, plus `-report`, beside the run).
    public var out: String?
    /// Slices to show (default: every slice the run predicted).
    public var slices: [Int]?
    /// Largest image width in pixels; a region narrower than this is shown 1:1 (no upsampling).
    public var width = 2048
    /// A region of each slice in source pixels (rows, columns), for full-resolution detail.
    public var crop: (rows: Range<Int>, cols: Range<Int>)?
    /// The raw volume to draw under the maps (default: the source run.json names).
    public var raw: String?
    /// The model's sidecar JSON (default: the one beside the model run.json names).
    public var modelJSON: String?
    /// One colour scale for every NMF factor instead of one per factor.
    public var sharedFactorScale = false
    /// Who made the report ("brainmap 0.2.0"), for the provenance.
    public var generator = "brainmap"
    public var context = SourceOptions(cacheBytes: 0)
    public init(run: String) { self.run = run }

    public var outDirectory: String {
        if let out { return out }
        let r = run.hasSuffix("/") ? String(run.dropLast()) : run
        return (r.hasSuffix(".zarr") ? String(r.dropLast(5)) : r) + "-report"
    }
}

public struct ReportSummary: Sendable {
    public var index = ""
    public var slices: [Int] = []
    public var images: [String] = []
    /// Notes on what is not in the report and why (raw unreadable, …).
    public var notes: [String] = []
    /// What `brainmap status` lists to run next (stale or unfinished steps): the page says so at its top.
    public var outOfDate: [String] = []
    public var wall = 0.0
}

/// `brainmap report`: a self-contained HTML page with PNG images of a run — per slice the raw, the label maps over it,
/// entropy, PC1–3 as RGB, each NMF factor, clusters; the evaluation, training curves, analysis charts, provenance.
/// Steps not run are absent. Slice by slice, so memory does not grow with the number of slices.
public enum ReportJob {
    public static func run(_ o: ReportOptions, progress: (String) -> Void = { _ in }) async throws -> ReportSummary {
        let start = Date()
        let contents = try RunContents(root: o.run)
        guard o.width >= 16 else { throw ReportError.input("--width \(o.width) is too small; give at least 16 pixels") }
        var summary = ReportSummary()
        let out = o.outDirectory
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
        catch { throw ReportError.output("cannot create the report directory \(out): \(error.localizedDescription)") }

        var arrays: [RunContents.ArrayName: ZarrArray] = [:]
        for name in RunContents.ArrayName.allCases { arrays[name] = try await contents.open(name, context: o.context) }
        var clusterings: [(name: String, array: ZarrArray)] = []
        for name in contents.clusterings { if let a = try await contents.open(name, context: o.context) { clusterings.append((name, a)) } }
        guard let labels = arrays[.labels] else {
            throw ReportError.input("\(o.run) has no labels array; run brainmap predict with --outputs including labels first")
        }
        let (H, W) = (labels.shape[1], labels.shape[2])
        let raw = try await openRaw(o, contents: contents, depth: labels.shape[0], height: H, width: W, notes: &summary.notes)

        let predicted = try await contents.predictedSlices(labels)
        let slices = o.slices ?? predicted
        if let bad = slices.first(where: { $0 < 0 || $0 >= labels.shape[0] }) {
            throw ReportError.input("--slices: slice \(bad) is outside the run (z = 0..<\(labels.shape[0]))")
        }
        for z in slices where !predicted.contains(z) { summary.notes.append("slice \(z) was not predicted: its maps are empty") }
        // The view: the whole slice, or the crop (source pixels → run pixels, rounding outwards).
        var rows = 0..<H, cols = 0..<W
        if let c = o.crop {
            let s = contents.stride
            let r0 = max(0, c.rows.lowerBound / s), r1 = min(H, (c.rows.upperBound + s - 1) / s)
            let c0 = max(0, c.cols.lowerBound / s), c1 = min(W, (c.cols.upperBound + s - 1) / s)
            guard r0 < r1, c0 < c1 else {
                throw ReportError.input("--crop \(c.rows.lowerBound):\(c.rows.upperBound),\(c.cols.lowerBound):\(c.cols.upperBound) lies outside the run's source extent (\(H * s)×\(W * s) pixels)")
            }
            rows = r0..<r1; cols = c0..<c1
        }

        var images: [String] = []
        func save(_ img: Image, _ name: String) throws -> String {
            let file = name + ".png"
            try img.writePNG(to: out + "/" + file)
            images.append(file)
            return file
        }
        _ = try save(Render.colorbar(), "colorbar-viridis")

        var sliceHTML = ""
        for z in slices {
            var figs = SliceFigures(view: SliceView(z: z, rows: rows, cols: cols, maxWidth: o.width), contents: contents, arrays: arrays,
                                    clusterings: clusterings, raw: raw, out: out, sharedFactorScale: o.sharedFactorScale)
            let body = try await figs.render()
            images += figs.images
            progress("slice \(z): " + figs.timings.map { String(format: "%@ %.2f s", $0.0, $0.1) }.joined(separator: ", "))
            let region = o.crop == nil ? "" : " — rows \(rows.lowerBound * contents.stride)…\(rows.upperBound * contents.stride), columns \(cols.lowerBound * contents.stride)…\(cols.upperBound * contents.stride) (source pixels)"
            sliceHTML += "<section id=\"slice-\(z)\"><h2>Slice \(z)\(HTML.escape(region))</h2>\(body)</section>"
        }
        let results = ResultSections(contents: contents, save: save)
        let evaluation = try results.evaluation(), training = results.training(sidecarOverride: o.modelJSON), analysis = results.analysis()
        summary.wall = Date().timeIntervalSince(start)
        let provenance = results.provenance(generatedBy: o.generator, sidecarOverride: o.modelJSON, wall: summary.wall)

        var nav = slices.map { "<a href=\"#slice-\($0)\">slice \($0)</a>" }
        for (id, html) in [("evaluation", evaluation), ("training", training), ("analysis", analysis), ("provenance", provenance)] where !html.isEmpty {
            nav.append("<a href=\"#\(id)\">\(id)</a>")
        }
        let title = "brainmap report: " + (contents.root as NSString).lastPathComponent
        let notes = summary.notes.isEmpty ? "" : "<p class=\"note\">" + summary.notes.map(HTML.escape).joined(separator: "<br>") + "</p>"
        // What is out of date (a step whose inputs changed, one that did not finish, partly predicted slices) is
        // drawn as it is on disk: say so at the top, as `brainmap status` does, rather than present it as current.
        let outOfDate = (try? RunStatus.of(Run.inspect(contents.root)))?.next ?? []
        summary.outOfDate = outOfDate
        let stale = outOfDate.isEmpty ? "" : "<div class=\"stale\"><b>Not up to date</b> — these results are shown as they are on disk; "
            + "run what `brainmap status` lists, then the report again:<ul>" + outOfDate.map { "<li>" + HTML.escape($0) + "</li>" }.joined() + "</ul></div>"
        let page = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
            + "<title>\(HTML.escape(title))</title><style>\(HTML.style)</style></head><body>"
            + "<header><h1>\(HTML.escape(title))</h1><p>\(HTML.escape(contents.root)) · source \(HTML.escape(contents.source ?? "unknown")) · stride \(contents.stride) · slices \(slices.map(String.init).joined(separator: ", "))</p></header>"
            + "<nav>\(nav.joined())</nav>" + stale + notes + sliceHTML + evaluation + training + analysis + provenance + "</body></html>"
        summary.index = out + "/index.html"
        let tmp = summary.index + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(page.utf8)), rename(tmp, summary.index) == 0 else {
            throw ReportError.output("cannot write \(summary.index): check the directory's permissions and free space")
        }
        summary.slices = slices
        summary.images = images
        summary.wall = Date().timeIntervalSince(start)
        return summary
    }

    /// The raw volume under the maps, if it can be read and lines up with the run; otherwise nil with a note.
    private static func openRaw(_ o: ReportOptions, contents: RunContents, depth: Int, height: Int, width: Int,
                                notes: inout [String]) async throws -> ZarrArray? {
        guard let src = o.raw ?? contents.source else { notes.append("raw not shown: run.json names no source (give --raw)"); return nil }
        let a: ZarrArray
        do { a = try await VolumeSource.open(src, options: o.context) }
        catch {
            if o.raw != nil { throw ReportError.input("--raw \(src) cannot be opened: \(error)") }
            notes.append("raw not shown: the run's source \(src) cannot be opened (\(error)); give --raw SRC"); return nil
        }
        let s = contents.stride
        guard a.shape.count == 3, a.shape[0] == depth, (a.shape[1] + s - 1) / s == height, (a.shape[2] + s - 1) / s == width else {
            let msg = "\(src) has shape \(a.shape), which does not match the run's grid \([depth, height, width]) at stride \(s)"
            if o.raw != nil { throw ReportError.input("--raw: " + msg) }
            notes.append("raw not shown: " + msg); return nil
        }
        return a
    }
}
