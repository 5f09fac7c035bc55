import ArgumentParser
import Foundation
import Pipeline
import VolumeStore

struct Cleanup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The paper's area cleanup (Algorithm 1), out of core: keep each class's largest components, refill the rest by kNN.",
        discussion: """
        Reads RUN.zarr/labels, writes RUN.zarr/labels_clean (same shape, chunks and ids; 0 stays 0). Per class the
        --components largest connected components of its pixels are kept, the other pixels are unlabelled, and each of
        them takes the majority class of its --k nearest kept pixels (Euclidean, pixel coordinates; ties in distance:
        earlier row, then column; ties in the vote: the smaller class id). Tile by tile: memory is a tile, the
        components' union-find table and one slice's boundary pixels, never a slice. Re-running resumes: a slice is done
        when it was cleaned from the predicted slice as it is now, so slices predict added or recomputed since are
        cleaned again. Other parameters start a new labels_clean, swapped in whole when it is complete; --restart too.
        """)

    @Argument(help: "The run directory predict wrote.") var run: String
    @Option(help: "Components to keep per class, e.g. CTX=1,HYP=1,STR=1,VP=1,WM=2,ZI=1 (classes named override these defaults; the others keep theirs).") var components = "CTX=1,HYP=1,STR=1,VP=1,WM=2,ZI=1"
    @Option(parsing: .unconditional, help: "Neighbours that vote (1…64).") var k = 3
    @Option(help: "Connectivity: 4 or 8 per slice; 6 or 26 with --3d (default 4, or 6 with --3d).") var connectivity: Int?
    @Option(parsing: .unconditional, help: "Slices: 'all', '3', '0:8' or '1,5,9'.") var slices = "all"
    @Flag(name: .customLong("3d"), help: "Components across consecutive slices (beyond the paper, whose method is per slice); the kNN fill stays per slice.") var threeD = false
    @Option(parsing: .unconditional, help: "Cache of decoded label chunks (the passes re-read a slice's tiles instead of keeping them; a slice of 1420×5805 is 8 MiB). Beyond it: one tile, the component table and one slice's candidate pixels.") var memoryBudget = "64MiB"
    @Flag(help: "Clean every slice again (a new labels_clean, swapped in whole when complete).") var restart = false
    @Flag(help: "No progress bar.") var quiet = false

    func run() async throws {
        var o = CleanupOptions(run: run)
        var comps = o.components
        for (c, n) in try CleanupOptions.parseComponents(components) { comps[c] = n }
        o.components = comps
        try FlagCheck.range("--k", k, 1...64, "neighbours that vote")
        o.k = k; o.threeD = threeD; o.connectivity = connectivity ?? (threeD ? 6 : 4); o.restart = restart
        o.cacheBytes = try parseBytes(memoryBudget, name: "--memory-budget")
        if slices != "all" { o.slices = try parseSlices(slices) }
        // Per-slice buffers are large and short-lived; a fixed mmap threshold returns them to the system when freed
        // (see Predict) instead of leaving them in glibc's heap, so peak RSS stays flat in the slice count.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 256 << 10)
        let job = CleanupJob(options: o)
        let signals = StopSignals(finishing: "the slice in flight") { job.requestStop() }
        defer { signals.cancel() }
        let bars = PhaseBars(quiet: quiet)
        do {
            let s = try await job.run { bars.update($0.phase, $0.done, $0.total) }
            bars.finish()
            for n in s.notes { say("note: \(n)") }
            say("slices: \(s.slicesDone) cleaned now (\(s.slicesStale) of them because their predicted slice changed), \(s.slicesAlreadyDone) already done")
            say("components per class (sets, before keeping): " + zip(["CTX", "HYP", "STR", "VP", "WM", "ZI"], s.componentsPerClass).map { "\($0) \($1)" }.joined(separator: ", "))
            say(String(format: "pixels: %d predicted, %d unlabelled and refilled by %d-NN (%d candidates indexed), %d changed, %d left unfilled",
                       s.pixels, s.removed, o.k, s.candidatePixels, s.changed, s.unfilled))
            say(String(format: "%.2f s, peak RSS %@ → %@/labels_clean", s.wall, formatBytes(s.peakRSS), run))
        } catch let e as CleanupInterrupted {
            bars.finish()
            FileHandle.standardError.write(Data("brainmap cleanup: \(e)\n".utf8))
            throw ExitCode(130)
        }
    }
}

/// One progress bar per phase name, replaced when the phase changes.
final class PhaseBars: @unchecked Sendable {
    private var phase = ""
    private var bar: ProgressBar?
    private let quiet: Bool
    init(quiet: Bool) { self.quiet = quiet }
    func update(_ p: String, _ done: Int, _ total: Int) {
        guard !quiet else { return }
        if p != phase { bar?.finish(); phase = p; bar = ProgressBar(p, total: total) }
        bar?.update(done)
    }
    func finish() { bar?.finish(); bar = nil }
}
