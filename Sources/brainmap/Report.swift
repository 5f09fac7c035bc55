import ArgumentParser
import Foundation
import Pipeline
import Report

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "A self-contained HTML report of a run (PNG images, no network needed to view it).",
        discussion: """
        Per slice: the raw; labels and labels_clean over it (a fixed colour per class); the entropy heatmap; PC1–3 as
        an RGB composite; every NMF factor as a heatmap (viridis, with its colour bar); clusters over the raw. Then the
        evaluation (per-class precision/recall/F1, confusion matrices as counts and row-normalised), the training
        curves from the model's sidecar JSON, the PCA spectrum, select-factors' factor × ROI bars, the clusters'
        per-ROI distributions and cross-slice matching, and the run's provenance. Steps not run are simply absent.
        Images come from downsampled reads streamed chunk by chunk (float maps: mean of each image pixel's footprint,
        NaN-aware; label maps: its centre pixel), at most --width pixels wide; --crop shows a region at up to full
        resolution. Open DIR/index.html in a browser.
        """)

    @Argument(help: "The run directory (RUN.zarr).") var run: String
    @Option(help: "Output directory (default: RUN without .zarr, plus -report).") var out: String?
    @Option(help: "Slices: '3', '0:8' or '1,5,9' (default: every slice the run predicted).") var slices: String?
    @Option(help: "Largest image width in pixels.") var width = 2048
    @Option(help: "Region of each slice in source pixels, 'Y0:Y1,X0:X1', shown at up to full resolution.") var crop: String?
    @Option(help: "Raw volume under the maps (default: the source in run.json).") var raw: String?
    @Option(help: "The model's sidecar JSON with the training curves (default: MODEL.json beside the model run.json names).") var modelJson: String?
    @Flag(help: "One colour scale for all NMF factors (default: one per factor).") var sharedFactorScale = false

    func run() async throws {
        var o = ReportOptions(run: run)
        o.out = out; o.width = width; o.raw = raw; o.modelJSON = modelJson; o.sharedFactorScale = sharedFactorScale
        o.generator = "brainmap \(brainmapVersion) report"
        if let slices { o.slices = try parseSlices(slices) }
        if let crop { o.crop = try Self.parseCrop(crop) }
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD: return per-slice buffers to the system (see Predict) */, 256 << 10)
        let s = try await ReportJob.run(o) { FileHandle.standardError.write(Data("  \($0)\n".utf8)) }
        for n in s.notes { say("note: \(n)") }
        if !s.outOfDate.isEmpty { say("note: not up to date (the page says so at its top): " + s.outOfDate.joined(separator: "; ")) }
        say(String(format: "%d images for slices %@ in %.1f s, peak RSS %@", s.images.count, s.slices.map(String.init).joined(separator: ","), s.wall, formatBytes(peakRSS())))
        say("report: \(s.index)")
    }

    /// "Y0:Y1,X0:X1" → row and column ranges.
    static func parseCrop(_ s: String) throws -> (rows: Range<Int>, cols: Range<Int>) {
        let parts = s.split(separator: ",").map { $0.split(separator: ":").map { Int($0.trimmingCharacters(in: .whitespaces)) } }
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0 != nil } }),
              let y0 = parts[0][0], let y1 = parts[0][1], let x0 = parts[1][0], let x1 = parts[1][1], 0 <= y0, y0 < y1, 0 <= x0, x0 < x1 else {
            throw ValidationError("--crop '\(s)': give rows and columns in source pixels as Y0:Y1,X0:X1, e.g. 400:900,3000:4000")
        }
        return (y0..<y1, x0..<x1)
    }
}
