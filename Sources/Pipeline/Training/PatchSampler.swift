import Foundation
import NeuralNet
import VolumeStore

/// Patches for training and validation, sampled from an annotated volume by region reads (tiles of a slice at a time;
/// memory = one tile plus the samples, whatever the slice size).
///
/// - `whole-window` (training, as the paper): centres whose whole window lies inside one annotated class. Annotated
///   pixels are tissue, so such a window is also inside the tissue and inside the image.
/// - `centre` (validation/test, as the paper): any pixel whose own annotation is a class; the window is zero
///   outside the image, as `predict` sees it.
///
/// Per class, a uniform sample without replacement of `perClass` positions (reservoir sampling in scan order, seeded);
/// a class with fewer positions is sampled with replacement (reported); a class with none is an error.
public struct PatchSampler: Sendable {
    public enum Rule: String, Sendable { case wholeWindow = "whole-window", centre }

    public let volume: ZarrArray, annotations: ZarrArray
    public let map: LabelMap
    /// Window side (134 for valid134, 128 for padded128); pixel (r, c)'s window starts at (r − side/2, c − side/2).
    public let window: Int
    /// Centres per tile side (the annotation tile read is this plus the window).
    public var tile = 1024

    public init(volume: ZarrArray, annotations: ZarrArray, map: LabelMap, window: Int) throws {
        guard volume.shape.count == 3, volume.metadata.dtype.kind == .uint, volume.metadata.dtype.size == 1 else {
            throw PipelineError.input("volume \(volume.name) is \(volume.metadata.dtype.v3Name) \(volume.shape); training reads a uint8 (z, y, x) volume")
        }
        guard annotations.metadata.dtype.kind != .float else {
            throw PipelineError.input("annotations \(annotations.name) are \(annotations.metadata.dtype.v3Name); annotations must be an integer label array")
        }
        guard annotations.shape == volume.shape else {
            throw PipelineError.input("annotations \(annotations.name) have shape \(annotations.shape) but the volume \(volume.name) has \(volume.shape); they must cover the same voxels")
        }
        self.volume = volume; self.annotations = annotations; self.map = map; self.window = window
    }

    public struct Position: Sendable, Hashable, Comparable {
        public var z: Int, y: Int, x: Int
        public static func < (a: Position, b: Position) -> Bool { (a.z, a.y, a.x) < (b.z, b.y, b.x) }
    }

    public struct ClassCount: Sendable {
        /// Positions satisfying the rule; patches drawn; whether drawn with replacement.
        public var available: Int, sampled: Int, withReplacement: Bool
    }

    /// Patches: `images` holds `count` windows of window² uint8, row-major.
    public struct Patches: Sendable {
        public var window: Int
        public var images: [UInt8]
        public var labels: [Int]
        public var positions: [Position]
        public var counts: [ClassCount]
        public var count: Int { labels.count }
    }

    /// Checks slice indices against the volume.
    public func checkSlices(_ slices: [Int], flag: String) throws {
        if let bad = slices.first(where: { $0 < 0 || $0 >= volume.shape[0] }) {
            throw PipelineError.input("\(flag): slice \(bad) is outside the volume (z = 0..<\(volume.shape[0]))")
        }
    }

    /// Draws `perClass` positions of every class from `slices` by `rule`, then reads their windows.
    public func sample(slices: [Int], rule: Rule, perClass: Int, seed: UInt64, flag: String) async throws -> Patches {
        try checkSlices(slices, flag: flag)
        let C = AreaClassifier.classes.count
        var reservoirs = [[Position]](repeating: [], count: C)
        var seen = [Int](repeating: 0, count: C)
        var rng = SeededRandom(seed: seed, stream: rule == .wholeWindow ? 1 : 2, index: 0)
        let H = annotations.shape[1], W = annotations.shape[2]
        for z in slices {
            for ty in Swift.stride(from: 0, to: H, by: tile) {
                for tx in Swift.stride(from: 0, to: W, by: tile) {
                    let centres = (ty..<min(H, ty + tile), tx..<min(W, tx + tile))
                    try await scan(z: z, rows: centres.0, cols: centres.1, rule: rule) { c, y, x in
                        let k = seen[c]
                        seen[c] += 1
                        if k < perClass { reservoirs[c].append(Position(z: z, y: y, x: x)) }
                        else {
                            let j = rng.next(below: k + 1)
                            if j < perClass { reservoirs[c][j] = Position(z: z, y: y, x: x) }
                        }
                    }
                }
            }
        }
        if let empty = seen.indices.first(where: { seen[$0] == 0 }) {
            // The network has an output per class of the paper's six: a label map cannot leave one out.
            if !map.classOf.values.contains(empty) {
                throw PipelineError.input("--label-map \(map.name): no annotation id maps to \(AreaClassifier.classes[empty]), but the network has one output "
                    + "per class (\(AreaClassifier.classes.joined(separator: ", "))) and each needs training patches; map the ids of an area to it")
            }
            let why = rule == .wholeWindow ? "no \(window)×\(window) window lies wholly inside it" : "no pixel is annotated with it"
            throw PipelineError.input("\(flag): class \(AreaClassifier.classes[empty]) has no patch in slices \(slices.map(String.init).joined(separator: ",")): \(why) (label map \(map.name)). Add slices where it is annotated, or check --label-map.")
        }
        var positions: [Position] = [], labels: [Int] = [], counts: [ClassCount] = []
        for c in 0..<C {
            var chosen = reservoirs[c]
            let short = seen[c] < perClass
            while chosen.count < perClass { chosen.append(reservoirs[c][rng.next(below: reservoirs[c].count)]) }
            counts.append(ClassCount(available: seen[c], sampled: perClass, withReplacement: short))
            positions += chosen; labels += Array(repeating: c, count: perClass)
        }
        let images = try await readWindows(positions)
        return Patches(window: window, images: images, labels: labels, positions: positions, counts: counts)
    }

    /// Calls `found(class, y, x)` for every centre of the tile satisfying the rule, in row-major order.
    private func scan(z: Int, rows: Range<Int>, cols: Range<Int>, rule: Rule, found: (Int, Int, Int) -> Void) async throws {
        let H = annotations.shape[1], W = annotations.shape[2], lo = window / 2
        switch rule {
        case .centre:
            let cls = try await classes(Box([z..<(z + 1), rows, cols]))
            for (i, y) in rows.enumerated() { for (j, x) in cols.enumerated() {
                let c = cls[i * cols.count + j]
                if c >= 0 { found(Int(c), y, x) }
            } }
        case .wholeWindow:
            // Windows of centres in the tile that fit in the image: rows [y − lo, y − lo + window).
            let cy0 = max(rows.lowerBound, lo), cy1 = min(rows.upperBound, H - window + lo + 1)
            let cx0 = max(cols.lowerBound, lo), cx1 = min(cols.upperBound, W - window + lo + 1)
            guard cy0 < cy1, cx0 < cx1 else { return }
            let ry = (cy0 - lo)..<(cy1 - lo + window - 1), rx = (cx0 - lo)..<(cx1 - lo + window - 1)
            let cls = try await classes(Box([z..<(z + 1), ry, rx]))
            let rh = ry.count, rw = rx.count
            // run[y][x]: how many pixels from (y, x) rightwards share its class; then down[y][x]: how many rows from y
            // down have a full-width uniform run of that same class starting at x.
            var run = [Int32](repeating: 0, count: rh * rw)
            for y in 0..<rh {
                var r: Int32 = 0
                for x in Swift.stride(from: rw - 1, through: 0, by: -1) {
                    let c = cls[y * rw + x]
                    r = c < 0 ? 0 : (x + 1 < rw && cls[y * rw + x + 1] == c ? r + 1 : 1)
                    run[y * rw + x] = r
                }
            }
            var down = [Int32](repeating: 0, count: rw)
            let need = Int32(window)
            var hits: [(Int, Int, Int)] = []
            for y in Swift.stride(from: rh - 1, through: 0, by: -1) {
                for x in 0..<rw {
                    let ok = run[y * rw + x] >= need
                    down[x] = ok ? (y + 1 < rh && down[x] > 0 && cls[(y + 1) * rw + x] == cls[y * rw + x] ? down[x] + 1 : 1) : 0
                }
                // Centre (y + lo, x + lo) in image coordinates relative to the region.
                let cy = ry.lowerBound + y + lo
                guard cy >= cy0 && cy < cy1 else { continue }
                for x in 0..<rw where down[x] >= need {
                    let cx = rx.lowerBound + x + lo
                    if cx >= cx0 && cx < cx1 { hits.append((Int(cls[y * rw + x]), cy, cx)) }
                }
            }
            // Bottom-up scan found them in reverse row order; report in row-major order.
            hits.sort { ($0.1, $0.2) < ($1.1, $1.2) }
            for h in hits { found(h.0, h.1, h.2) }
        }
    }

    private func classes(_ box: Box) async throws -> [Int8] {
        try map.classes(of: try await annotations.read(box), dtype: annotations.metadata.dtype, source: annotations.name)
    }

    /// Reads the window of every position (zero outside the image), in position order; reads are sorted so that
    /// neighbouring windows share cached chunks.
    func readWindows(_ positions: [Position]) async throws -> [UInt8] {
        let side = window, lo = window / 2
        let H = volume.shape[1], W = volume.shape[2]
        var out = [UInt8](repeating: 0, count: positions.count * side * side)
        let order = positions.indices.sorted { positions[$0] < positions[$1] }
        for i in order {
            let p = positions[i]
            let y0 = p.y - lo, x0 = p.x - lo
            let ry = max(0, y0)..<min(H, y0 + side), rx = max(0, x0)..<min(W, x0 + side)
            guard !ry.isEmpty, !rx.isEmpty else { continue }
            let part = try await volume.read(Box([p.z..<(p.z + 1), ry, rx]))
            for (r, y) in ry.enumerated() {
                let dst = i * side * side + (y - y0) * side + (rx.lowerBound - x0)
                out.replaceSubrange(dst..<(dst + rx.count), with: part[(r * rx.count)..<((r + 1) * rx.count)])
            }
        }
        return out
    }
}
