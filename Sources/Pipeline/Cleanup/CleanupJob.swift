import Foundation
import NeuralNet
import VolumeStore

/// What `brainmap cleanup` is asked to do: the paper's Algorithm 1 on a run's `labels`, written as `labels_clean`.
public struct CleanupOptions: Sendable {
    public var run: String
    /// Components to keep per class id (1…6); classes not named keep none.
    public var components: [UInt8: Int] = [1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 1]
    public var k = 3
    /// 4 or 8 per slice; 6 or 26 with `threeD`.
    public var connectivity = 4
    public var slices: [Int]?
    /// Components across consecutive slices (the kNN fill stays per slice).
    public var threeD = false
    public var cacheBytes = 64 << 20
    public var restart = false

    public init(run: String) { self.run = run }

    /// Parses "CTX=1,HYP=1,STR=1,VP=1,WM=2,ZI=1".
    public static func parseComponents(_ s: String) throws -> [UInt8: Int] {
        var out: [UInt8: Int] = [:]
        for part in s.split(separator: ",") {
            let kv = part.split(separator: "=")
            guard kv.count == 2, let c = AreaClassifier.classes.firstIndex(of: String(kv[0])), let n = Int(kv[1]), n >= 0 else {
                throw PipelineError.input("--components: '\(part)' is not CLASS=N with CLASS one of \(AreaClassifier.classes.joined(separator: ", "))")
            }
            out[UInt8(c + 1)] = n
        }
        return out
    }

    /// What makes labels_clean: the slices are not part of it (more slices can be cleaned later; each slice's
    /// lineage is its done marker's version of the predicted slice).
    var parameters: Parameters {
        Parameters([("components", components.keys.sorted().map { "\(AreaClassifier.classes[Int($0) - 1])=\(components[$0]!)" }.joined(separator: ",")),
                    ("k", "\(k)"), ("connectivity", "\(connectivity)"), ("mode", threeD ? "3d" : "2d")])
    }
}

public typealias CleanupProgress = StepProgress

public struct CleanupSummary: Sendable {
    public var slicesDone = 0, slicesAlreadyDone = 0
    /// Slices cleaned before from a predicted slice that has changed since (recomputed now).
    public var slicesStale = 0
    /// Why labels_clean is recomputed from scratch (other parameters, --restart), if it is.
    public var notes: [String] = []
    public var pixels = 0, removed = 0, changed = 0, unfilled = 0
    public var componentsPerClass: [Int] = Array(repeating: 0, count: 6)
    public var candidatePixels = 0
    public var wall = 0.0
    public var peakRSS = 0
}

/// Algorithm 1 out of core. Per group (a slice, or with `threeD` all slices at once):
/// 1. components: each tile (one chunk of `labels`) is labelled on its own; a union-find over all tiles' components
///    joins them across tile faces, edges and corners (tiles keep only their border ids) and across slices in 3-D;
///    sizes are summed per set; each class keeps its b_i largest sets (equal sizes: the one whose first pixel comes
///    first in (z, y, x) order).
/// 2. candidates: per slice, the labelled pixels within Chebyshev distance k of an unlabelled pixel or of a tile's
///    inner edge, in a grid index (see NeighbourIndex for why that set holds every answer).
/// 3. fill: per tile, every removed pixel gets the vote of its k nearest labelled pixels; `labels_clean` is written
///    chunk by chunk; the slice is journaled. Pixels with label 0 (not predicted) stay 0.
/// Tiles are recomputed from the (cached) labels whenever a pass needs them instead of being kept: memory is a tile,
/// the border ids, the union-find table and one slice's candidates.
public final class CleanupJob: @unchecked Sendable {
    public let options: CleanupOptions
    private let stopFlag = StopFlag()
    public init(options: CleanupOptions) { self.options = options }
    public func requestStop() { stopFlag.set() }

    private var labels: ZarrArray!
    private var H = 0, W = 0, cy = 0, cx = 0

    public func run(progress: @escaping (CleanupProgress) -> Void = { _ in }) async throws -> CleanupSummary {
        let o = options, start = Date()
        let diagonal: Bool
        switch (o.threeD, o.connectivity) {
        case (false, 4), (true, 6): diagonal = false
        case (false, 8), (true, 26): diagonal = true
        default: throw PipelineError.input("--connectivity must be 4 or 8 per slice, 6 or 26 with --3d (got \(o.connectivity))")
        }
        guard o.k >= 1 else { throw PipelineError.input("--k must be at least 1") }
        var context = SourceOptions(cacheBytes: o.cacheBytes)
        context.cache = ChunkCache(capacity: o.cacheBytes)
        let run = try Run.open(o.run)
        do { labels = try await VolumeSource.open(try run.arrayPath("labels"), options: context) }
        catch { throw PipelineError.input("\(o.run) has no readable labels array (\(error)); cleanup takes a RUN.zarr that predict wrote with labels") }
        let md = labels.metadata
        guard md.dtype.size == 1, md.dtype.kind == .uint, labels.shape.count == 3, md.chunks[0] == 1 else {
            throw PipelineError.input("\(o.run)/labels is \(md.dtype.v3Name) \(labels.shape) chunked \(md.chunks); cleanup needs predict's uint8 (z, y, x) labels, one slice per chunk")
        }
        H = labels.shape[1]; W = labels.shape[2]; cy = md.chunks[1]; cx = md.chunks[2]
        let zs = o.slices ?? Array(0..<labels.shape[0])
        if let bad = zs.first(where: { $0 < 0 || $0 >= labels.shape[0] }) {
            throw PipelineError.input("--slices: slice \(bad) is outside the run (z = 0..<\(labels.shape[0]))")
        }
        // Slices predict has not finished are cleaned as they are (empty, or the largest components of a part) and
        // again once it has (they are then stale): say so, rather than report them cleaned like the others.
        var unfinishedNote: String?
        if run.manifest.steps["predict"] != nil, let perSlice = run.blocksPerSlice() {
            let blocks = run.predictedBlocks().mapValues(\.count), wanted = Set(zs)
            let none = zs.filter { blocks[$0] == nil }
            let partial = Run.partlyPredicted(blocks.filter { wanted.contains($0.key) }, perSlice: perSlice)
            var parts: [String] = []
            if !partial.slices.isEmpty {
                parts.append("partly predicted: " + partial.description
                             + " — cleaned as predicted so far, and again once predict has finished")
            }
            if !none.isEmpty { parts.append("not predicted: slices " + Run.ranges(none, separator: ", ", dash: "–") + " — their labels_clean stays empty until predicted and cleaned again") }
            if !parts.isEmpty { unfinishedNote = parts.joined(separator: "; ") }
        }
        // Other parameters start a labels_clean that replaces the old one whole: refused when --slices would leave
        // out slices the old one has cleaned (they would silently vanish).
        if !o.restart, o.slices != nil, let e = run.manifest.steps["cleanup"], !o.parameters.differences(from: e.parameters).isEmpty {
            let cleaned = Set(DoneMarkers.read(directory: run.root + "/" + e.directory).keys.compactMap { Int($0) })
            let dropped = cleaned.subtracting(zs).sorted()
            if !dropped.isEmpty {
                let all = cleaned.union(zs).sorted().map(String.init).joined(separator: ",")
                throw PipelineError.input("cleanup with other parameters (" + o.parameters.differences(from: e.parameters).joined(separator: "; ")
                    + ") makes a new labels_clean that replaces the old one whole, and --slices leaves out slice\(dropped.count > 1 ? "s" : "") "
                    + dropped.map(String.init).joined(separator: ",") + " that it has cleaned. Clean them too (--slices \(all), or without "
                    + "--slices), or add --restart to drop them")
            }
        }
        let session = try run.begin(step: "cleanup", command: "cleanup", parameters: o.parameters, inputs: [:],
                                    outputs: ["labels_clean"], restart: o.restart)
        let out = try await session.array("labels_clean", metadata: md, dimensions: ["z", "y", "x"], labelMap: true)
        // Lineage: a slice is done when cleaned from the predicted slice as it is now (in 3-D, from all of them).
        let predicted = run.predictedSliceVersions()
        let groupVersion = run.groupVersion(zs)
        let work = session.plan(zs, id: { $0 }, version: { o.threeD ? groupVersion : predicted[$0] ?? "none" })

        var summary = CleanupSummary()
        summary.notes = session.notes + (unfinishedNote.map { [$0] } ?? [])
        summary.slicesAlreadyDone = work.alreadyDone; summary.slicesStale = work.stale
        let groups: [[Int]] = o.threeD ? [zs] : zs.map { [$0] }
        for group in groups {
            let todo = group.filter(work.todo.contains)
            guard !todo.isEmpty else { continue }
            if stopFlag.isSet { throw CleanupInterrupted(slicesDone: summary.slicesDone) }
            var (table, borders) = try await components(group, diagonal: diagonal, progress: progress)
            for (c, n) in table.setsPerClass() where (1...6).contains(c) { summary.componentsPerClass[Int(c) - 1] += n }
            let kept = table.kept(o.components)
            for z in todo {
                if stopFlag.isSet { throw CleanupInterrupted(slicesDone: summary.slicesDone) }
                try await fill(z, kept: kept, borders: borders, out: out, summary: &summary, progress: progress)
                // The slice's pyramid, before its marker: a done slice has every level (a recomputed one rebuilds them).
                try session.pyramid("labels_clean")?.buildSlice(z, rebuild: true)
                try session.markDone("\(z)", version: o.threeD ? groupVersion : predicted[z] ?? "none")
                summary.slicesDone += 1
            }
        }
        try session.finish(arrays: ["labels_clean"])
        summary.wall = Date().timeIntervalSince(start)
        summary.peakRSS = peakRSS()
        return summary
    }

    // MARK: tiles

    private struct TileKey: Hashable { var z: Int, by: Int, bx: Int }

    /// A tile's border ids (global; −1 = no component), kept for stitching after the tile itself is gone.
    struct Border {
        var h: Int, w: Int
        var top: [Int32], bottom: [Int32], left: [Int32], right: [Int32]
    }

    private var tilesY: Int { (H + cy - 1) / cy }
    private var tilesX: Int { (W + cx - 1) / cx }
    private func extent(_ by: Int, _ bx: Int) -> (Int, Int) { (min(cy, H - by * cy), min(cx, W - bx * cx)) }

    /// The tile's labels (h × w), or nil when its chunk was never written (not predicted).
    private func tileLabels(_ t: TileKey) async throws -> [UInt8]? {
        guard let chunk = try await labels.readChunkIfPresent([t.z, t.by, t.bx]) else { return nil }
        let (h, w) = extent(t.by, t.bx)
        if h == cy && w == cx { return chunk }
        var out = [UInt8](repeating: 0, count: h * w)
        for y in 0..<h { for x in 0..<w { out[y * w + x] = chunk[y * cx + x] } }
        return out
    }

    /// The tile's labels as stored, and the components of its six classes (other ids form none).
    private func tileComponents(_ t: TileKey, diagonal: Bool) async throws -> ([UInt8], TileComponents)? {
        guard let raw = try await tileLabels(t) else { return nil }
        let l = raw.map { $0 > 6 ? 0 : $0 }
        let (h, w) = extent(t.by, t.bx)
        let c = l.withUnsafeBufferPointer { TileComponents(labels: $0, height: h, width: w, diagonal: diagonal) }
        return (raw, c)
    }

    // MARK: pass 1: components

    private func components(_ group: [Int], diagonal: Bool, progress: (CleanupProgress) -> Void) async throws
        -> (ComponentTable, [TileKey: (base: Int, border: Border)]) {
        var table = ComponentTable()
        var borders: [TileKey: (base: Int, border: Border)] = [:]
        let total = group.count * tilesY * tilesX
        var n = 0
        let inGroup = Set(group)
        for z in group {
            for by in 0..<tilesY {
                for bx in 0..<tilesX {
                    let key = TileKey(z: z, by: by, bx: bx)
                    n += 1
                    progress(CleanupProgress(phase: "components", done: n, total: total))
                    guard let (_, comps) = try await tileComponents(key, diagonal: diagonal) else { continue }
                    let (h, w) = extent(by, bx)
                    let y0 = by * cy, x0 = bx * cx
                    let base = table.add(comps) { i in (z * H + y0 + i / w) * W + x0 + i % w }
                    func g(_ i: Int) -> Int32 { comps.ids[i] == 0 ? -1 : Int32(base) + comps.ids[i] - 1 }
                    let border = Border(h: h, w: w, top: (0..<w).map { g($0) }, bottom: (0..<w).map { g((h - 1) * w + $0) },
                                        left: (0..<h).map { g($0 * w) }, right: (0..<h).map { g($0 * w + w - 1) })
                    borders[key] = (base, border)
                    // Across slices: this tile against slice z − 1 (the tile there recomputed, its neighbours' borders).
                    if options.threeD && inGroup.contains(z - 1) {
                        let below = try await tileComponents(TileKey(z: z - 1, by: by, bx: bx), diagonal: diagonal)
                        let belowBase = borders[TileKey(z: z - 1, by: by, bx: bx)]?.base ?? 0
                        let offsets = diagonal ? [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)] : [(0, 0)]
                        for i in 0..<(h * w) where comps.ids[i] != 0 {
                            let y = i / w, x = i % w
                            for (dy, dx) in offsets {
                                let py = y0 + y + dy, px = x0 + x + dx
                                guard py >= 0, py < H, px >= 0, px < W else { continue }
                                var other: Int32 = -1
                                if py >= y0 && py < y0 + h && px >= x0 && px < x0 + w {
                                    if let b = below, b.1.ids[(py - y0) * w + px - x0] != 0 { other = Int32(belowBase) + b.1.ids[(py - y0) * w + px - x0] - 1 }
                                } else {
                                    other = borderId(z - 1, py, px, borders)
                                }
                                let me = base + Int(comps.ids[i]) - 1
                                if other >= 0 && table.classOf(Int(other)) == table.classOf(me) { table.union(me, Int(other)) }
                            }
                        }
                    }
                }
            }
            // Within the slice: every border pixel against its neighbours in other tiles (faces, edges, corners).
            let offsets = diagonal ? [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)] : [(-1, 0), (0, -1), (0, 1), (1, 0)]
            for by in 0..<tilesY {
                for bx in 0..<tilesX {
                    guard let (_, b) = borders[TileKey(z: z, by: by, bx: bx)] else { continue }
                    let y0 = by * cy, x0 = bx * cx
                    var pixels: [(Int, Int, Int32)] = []
                    for x in 0..<b.w { pixels.append((0, x, b.top[x])); if b.h > 1 { pixels.append((b.h - 1, x, b.bottom[x])) } }
                    for y in 1..<max(1, b.h - 1) { pixels.append((y, 0, b.left[y])); if b.w > 1 { pixels.append((y, b.w - 1, b.right[y])) } }
                    for (y, x, id) in pixels where id >= 0 {
                        for (dy, dx) in offsets {
                            let py = y0 + y + dy, px = x0 + x + dx
                            guard py >= 0, py < H, px >= 0, px < W, py < y0 || py >= y0 + b.h || px < x0 || px >= x0 + b.w else { continue }
                            let other = borderId(z, py, px, borders)
                            if other >= 0 && table.classOf(Int(other)) == table.classOf(Int(id)) { table.union(Int(id), Int(other)) }
                        }
                    }
                }
            }
        }
        return (table, borders)
    }

    /// The global component id at a pixel on a tile's border (−1 when none or the tile is not predicted).
    private func borderId(_ z: Int, _ y: Int, _ x: Int, _ borders: [TileKey: (base: Int, border: Border)]) -> Int32 {
        guard let (_, b) = borders[TileKey(z: z, by: y / cy, bx: x / cx)] else { return -1 }
        let ly = y % cy, lx = x % cx
        if ly == 0 { return b.top[lx] }
        if ly == b.h - 1 { return b.bottom[lx] }
        if lx == 0 { return b.left[ly] }
        if lx == b.w - 1 { return b.right[ly] }
        preconditionFailure("(\(y), \(x)) is not on its tile's border")
    }

    // MARK: passes 2 and 3: candidates, fill

    private func fill(_ z: Int, kept: [Bool], borders: [TileKey: (base: Int, border: Border)], out: ZarrArray,
                      summary: inout CleanupSummary, progress: (CleanupProgress) -> Void) async throws {
        let k = options.k
        let diagonal = options.connectivity == 8 || options.connectivity == 26
        // The tile's stored labels, and per pixel: the label if kept, 0 if not predicted (or not a class), 255 if removed.
        func keptMap(_ t: TileKey) async throws -> (labels: [UInt8], kept: [UInt8])? {
            guard let (raw, comps) = try await tileComponents(t, diagonal: diagonal) else { return nil }
            guard let base = borders[t]?.base else { return (raw, raw.map { _ in 0 }) }
            var m = [UInt8](repeating: 0, count: raw.count)
            for i in m.indices where comps.ids[i] != 0 { m[i] = kept[base + Int(comps.ids[i]) - 1] ? raw[i] : 255 }
            return (raw, m)
        }
        var index = NeighbourIndex(height: H, width: W)
        var removedInSlice = 0
        let total = 2 * tilesY * tilesX
        var n = 0
        for by in 0..<tilesY {
            for bx in 0..<tilesX {
                n += 1
                progress(CleanupProgress(phase: "slice \(z): candidates", done: n, total: total))
                guard let m = try await keptMap(TileKey(z: z, by: by, bx: bx))?.kept else { continue }
                let (h, w) = extent(by, bx)
                let y0 = by * cy, x0 = bx * cx
                // Not-labelled pixels dilated by a (2k+1)² square, separably; inner tile edges count as not labelled.
                var near = [Bool](repeating: false, count: h * w)
                var rowNear = [Bool](repeating: false, count: h * w)
                for y in 0..<h {
                    var last = -1_000_000
                    for x in 0..<w { if m[y * w + x] == 0 || m[y * w + x] == 255 { last = x }; rowNear[y * w + x] = x - last <= k }
                    last = 1_000_000
                    for x in Swift.stride(from: w - 1, through: 0, by: -1) {
                        if m[y * w + x] == 0 || m[y * w + x] == 255 { last = x }
                        if last - x <= k { rowNear[y * w + x] = true }
                    }
                }
                for x in 0..<w {
                    var last = -1_000_000
                    for y in 0..<h { if rowNear[y * w + x] { last = y }; near[y * w + x] = y - last <= k }
                    last = 1_000_000
                    for y in Swift.stride(from: h - 1, through: 0, by: -1) {
                        if rowNear[y * w + x] { last = y }
                        if last - y <= k { near[y * w + x] = true }
                    }
                }
                for y in 0..<h {
                    for x in 0..<w {
                        let v = m[y * w + x]
                        if v == 255 { removedInSlice += 1; continue }
                        guard v != 0 else { continue }
                        let gy = y0 + y, gx = x0 + x
                        let innerEdge = (y < k && by > 0) || (y >= h - k && by < tilesY - 1) || (x < k && bx > 0) || (x >= w - k && bx < tilesX - 1)
                        if near[y * w + x] || innerEdge { index.insert(y: gy, x: gx, label: v) }
                    }
                }
            }
        }
        index.build()
        summary.candidatePixels += index.count
        summary.removed += removedInSlice
        for by in 0..<tilesY {
            for bx in 0..<tilesX {
                n += 1
                progress(CleanupProgress(phase: "slice \(z): fill", done: n, total: total))
                guard let (l, keptLabels) = try await keptMap(TileKey(z: z, by: by, bx: bx)) else { continue }
                var m = keptLabels
                let (h, w) = extent(by, bx)
                let y0 = by * cy, x0 = bx * cx
                for i in m.indices {
                    if m[i] == 255 {
                        m[i] = index.vote(y: y0 + i / w, x: x0 + i % w, k: k)
                        if m[i] == 0 { summary.unfilled += 1 }
                    }
                    if l[i] != 0 { summary.pixels += 1 }
                    if m[i] != l[i] { summary.changed += 1 }
                }
                try await out.write(Box([z..<(z + 1), y0..<(y0 + h), x0..<(x0 + w)]), m)
            }
        }
    }
}

/// Thrown when a stop was requested; finished slices are journaled.
public struct CleanupInterrupted: Error, CustomStringConvertible {
    public let slicesDone: Int
    public var description: String { "stopped after \(slicesDone) slices; re-run the same command to resume" }
}
