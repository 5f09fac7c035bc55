import VolumeStore

/// Downsampled reads of one slice of an array, streamed: chunks are read a chunk row at a time (a few in flight) and
/// folded into the image-sized result as they arrive, so memory holds the result, a few chunks and the partial sums of
/// the image rows the current chunk row touches — never a whole slice of the array.
public enum SliceReader {
    /// How many chunks one read keeps in flight.
    static let inFlight = 4

    /// The NaN-aware mean of each image pixel's footprint, per channel: `channels` of a channel-first (c, z, y, x)
    /// array, or nil for a (z, y, x) one. `scale` is the array's pixels per run pixel (the stride, for the source
    /// volume; 1 for run arrays). Result: channel-major planes of view.height × view.width, NaN where the footprint
    /// has no value (never predicted, masked).
    public static func mean(_ array: ZarrArray, view: SliceView, channels: Range<Int>? = nil, scale: Int = 1) async throws -> [Float] {
        let nc = channels?.count ?? 1, w = view.width, h = view.height
        var out = [Float](repeating: .nan, count: nc * h * w)
        // Partial sums of the image rows still open: row → (sums, counts), channel-major within the row.
        var open: [Int: (sum: [Float], n: [Float])] = [:]
        let colMap = imageColumns(view: view, scale: scale, extent: array.shape.last!)
        try await forEachChunkRow(array, view: view, channels: channels, scale: scale) { box, values in
            let by = box.start[box.rank - 2], bx = box.start[box.rank - 1]
            let bh = box.size[box.rank - 2], bw = box.size[box.rank - 1]
            for y in 0..<bh {
                let u = view.imageRow((by + y) / scale)
                var acc = open.removeValue(forKey: u) ?? ([Float](repeating: 0, count: nc * w), [Float](repeating: 0, count: nc * w))
                for c in 0..<nc {
                    let src = (c * bh + y) * bw, dst = c * w
                    for x in 0..<bw {
                        let v = values[src + x]
                        if v.isNaN { continue }
                        let i = dst + colMap[bx + x]
                        acc.sum[i] += v; acc.n[i] += 1
                    }
                }
                open[u] = acc
            }
        } rowsDone: { firstOpen in
            // Image rows above `firstOpen` get no more pixels: final.
            for (u, acc) in open where u < firstOpen {
                for c in 0..<nc { for x in 0..<w where acc.n[c * w + x] > 0 { out[(c * h + u) * w + x] = acc.sum[c * w + x] / acc.n[c * w + x] } }
                open[u] = nil
            }
        }
        return out
    }

    /// The value at the centre of each image pixel's footprint of a (z, y, x) integer array on the run grid
    /// (view.height × view.width, row-major).
    public static func centres(_ array: ZarrArray, view: SliceView) async throws -> [Int32] {
        let w = view.width, h = view.height
        var out = [Int32](repeating: 0, count: h * w)
        let rowOf = Dictionary(uniqueKeysWithValues: (0..<h).map { (view.centreRow($0), $0) })
        let cols = (0..<w).map(view.centreCol)
        try await forEachChunkRow(array, view: view, channels: nil, scale: 1) { box, values in
            let by = box.start[1], bx = box.start[2], bh = box.size[1], bw = box.size[2]
            for y in 0..<bh {
                guard let u = rowOf[by + y] else { continue }
                for (v, c) in cols.enumerated() where c >= bx && c < bx + bw { out[u * w + v] = Int32(values[y * bw + c - bx]) }
            }
        } rowsDone: { _ in }
        return out
    }

    /// Image column of each array column (−1 outside the view).
    private static func imageColumns(view: SliceView, scale: Int, extent: Int) -> [Int] {
        (0..<extent).map { x in view.cols.contains(x / scale) ? view.imageCol(x / scale) : -1 }
    }

    /// Reads the view's part of the array chunk row by chunk row (each chunk clipped to the view, as Float, in C
    /// order of its box), handing each to `body` in arrival order; after a chunk row, `rowsDone` gets the first image
    /// row later chunk rows can still touch.
    private static func forEachChunkRow(_ array: ZarrArray, view: SliceView, channels: Range<Int>?, scale: Int,
                                        _ body: (Box, [Float]) -> Void, rowsDone: (Int) -> Void) async throws {
        let rank = array.shape.count
        let spatialRank = channels == nil ? 3 : 4
        guard rank == spatialRank else {
            throw ReportError.input("\(array.name) has shape \(array.shape); expected \(spatialRank == 3 ? "(z, y, x)" : "(c, z, y, x)")")
        }
        let H = array.shape[rank - 2], W = array.shape[rank - 1]
        let y0 = view.rows.lowerBound * scale, y1 = min(H, view.rows.upperBound * scale)
        let x0 = view.cols.lowerBound * scale, x1 = min(W, view.cols.upperBound * scale)
        guard view.z < array.shape[rank - 3], y0 < y1, x0 < x1 else {
            throw ReportError.input("\(array.name) (shape \(array.shape)) does not cover slice \(view.z), rows \(y0)..<\(y1), columns \(x0)..<\(x1)")
        }
        var region = Box(start: [view.z, y0, x0], size: [1, y1 - y0, x1 - x0])
        if let channels { region = Box(start: [channels.lowerBound] + region.start, size: [channels.count] + region.size) }
        let ch = array.metadata.chunks[rank - 2]
        for band in stride(from: y0 / ch * ch, to: y1, by: ch) {
            var rowBox = region
            rowBox.start[rank - 2] = max(y0, band); rowBox.size[rank - 2] = min(y1, band + ch) - rowBox.start[rank - 2]
            let boxes = array.chunks(overlapping: rowBox).compactMap { array.chunkBox($0).intersection(rowBox) }
            try await withThrowingTaskGroup(of: (Box, [Float]).self) { group in
                var next = 0
                func launch() {
                    let b = boxes[next]; next += 1
                    group.addTask { (b, floats(try await array.read(b), array.metadata.dtype)) }
                }
                while next < min(inFlight, boxes.count) { launch() }
                while let (b, v) = try await group.next() {
                    body(b, v)
                    if next < boxes.count { launch() }
                }
            }
            let after = band + ch
            rowsDone(after >= y1 ? view.height : view.imageRow(after / scale))
        }
    }

    /// Native-order elements as Float.
    static func floats(_ bytes: [UInt8], _ t: DataType) -> [Float] {
        let n = bytes.count / t.size
        return bytes.withUnsafeBytes { raw -> [Float] in
            switch (t.kind, t.size) {
            case (.float, 4): return Array(raw.bindMemory(to: Float.self))
            case (.float, 2): return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: 2 * $0, as: Float16.self)) }
            case (.float, _): return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
            default: return (0..<n).map { Float(t.integer(in: raw, at: $0)) }
            }
        }
    }
}
