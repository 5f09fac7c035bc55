import VolumeStore

/// Where the tissue is: `--mask SRC` (nonzero = tissue), automatic (the default) or none (`--no-mask`).
public enum MaskRule: Sendable, Equatable {
    case automatic, none
    case source(String)

    /// Cell side of the automatic mask, in source pixels.
    public static let automaticCell = 16

    /// What run.json records (and a resume compares).
    public var description: String {
        switch self {
        case .none: return "none"
        case let .source(s): return "source \(s) (nonzero = tissue)"
        case .automatic:
            return "automatic: Otsu threshold on the \(Self.automaticCell)×\(Self.automaticCell) block means of each slice "
                + "(whole slice tissue when the darker class's mean is ≥ 48, i.e. there is no dark background), "
                + "then a closing by a 5×5-cell square and a dilation by one cell"
        }
    }
}

/// Which pixels of one slice are tissue, on a grid of `factor`×`factor`-pixel cells.
public struct SliceMask: Sendable {
    public let factor: Int, height: Int, width: Int
    /// Row-major cells, nonzero = tissue.
    public let cells: [UInt8]

    public func isTissue(y: Int, x: Int) -> Bool { cells[(y / factor) * width + x / factor] != 0 }

    /// Whether any source pixel of rows × cols is tissue.
    public func any(rows: Range<Int>, cols: Range<Int>) -> Bool {
        guard !rows.isEmpty, !cols.isEmpty else { return false }
        for cy in (rows.lowerBound / factor)...((rows.upperBound - 1) / factor) {
            for cx in (cols.lowerBound / factor)...((cols.upperBound - 1) / factor) where cells[cy * width + cx] != 0 { return true }
        }
        return false
    }

    public var tissueFraction: Double { Double(cells.lazy.filter { $0 != 0 }.count) / Double(max(1, cells.count)) }
}

/// Computes slice masks on demand, keeping the last few (blocks of one slice run together).
public actor MaskProvider {
    let rule: MaskRule
    let source: ZarrArray
    let maskArray: ZarrArray?
    private var recent: [(z: Int, task: Task<SliceMask?, Error>)] = []
    /// Slice masks kept (blocks of one slice run together, the next slice's first blocks overlap the last ones).
    static let kept = 4

    public init(rule: MaskRule, source: ZarrArray, context: SourceOptions) async throws {
        self.rule = rule; self.source = source
        if case let .source(s) = rule {
            let m = try await VolumeSource.open(s, options: context)
            let sh = source.shape
            guard m.shape.count == 3, m.shape[0] == sh[0] else {
                throw PipelineError.input("mask \(s) has shape \(m.shape); it must be (z, y, x) with the source's \(sh[0]) slices")
            }
            let f = (sh[1] + m.shape[1] - 1) / m.shape[1]
            guard f >= 1, (sh[1] + f - 1) / f == m.shape[1], (sh[2] + f - 1) / f == m.shape[2] else {
                throw PipelineError.input("mask \(s) has shape \(m.shape); its (y, x) must be the source's \(sh[1...]) or that divided by an integer factor (rounded up)")
            }
            maskArray = m
        } else { maskArray = nil }
    }

    /// The mask of slice z, or nil when everything is tissue (`--no-mask`).
    public func mask(_ z: Int) async throws -> SliceMask? {
        if rule == .none { return nil }
        if let hit = recent.first(where: { $0.z == z }) { return try await hit.task.value }
        let t = Task { [rule, source, maskArray] in
            try await Self.compute(z, rule: rule, source: source, mask: maskArray)
        }
        recent.append((z, t))
        if recent.count > Self.kept { recent.removeFirst() }
        return try await t.value
    }

    static func compute(_ z: Int, rule: MaskRule, source: ZarrArray, mask: ZarrArray?) async throws -> SliceMask? {
        if let mask {
            // In bands of rows, not the whole slice at once (a full-resolution u8 mask slice is 8 bytes a pixel).
            let h = mask.shape[1], w = mask.shape[2], es = mask.dtype.size
            var cells = [UInt8](repeating: 0, count: h * w)
            for y0 in stride(from: 0, to: h, by: MaskMemory.maskBandRows) {
                let rows = min(MaskMemory.maskBandRows, h - y0)
                let raw = try await mask.read(Box([z..<(z + 1), y0..<(y0 + rows), 0..<w]))
                for i in 0..<(rows * w) where raw[(i * es)..<((i + 1) * es)].contains(where: { $0 != 0 }) { cells[y0 * w + i] = 1 }
            }
            return SliceMask(factor: (source.shape[1] + h - 1) / h, height: h, width: w, cells: cells)
        }
        let means = try await blockMeans(z, source: source)
        return automatic(means.values, height: means.height, width: means.width)
    }

    /// Means of the cell×cell blocks of slice z (edge blocks average what exists), read in bands of whole chunk rows.
    static func blockMeans(_ z: Int, source: ZarrArray) async throws -> (values: [Double], height: Int, width: Int) {
        let F = MaskRule.automaticCell, H = source.shape[1], W = source.shape[2]
        let ch = (H + F - 1) / F, cw = (W + F - 1) / F
        var sums = [Double](repeating: 0, count: ch * cw), counts = [Double](repeating: 0, count: ch * cw)
        let band = MaskMemory.automaticBandRows(sourceChunkRows: source.metadata.chunks[1])
        for y0 in stride(from: 0, to: H, by: band) {
            let rows = min(band, H - y0)
            let data = try await source.read(Box([z..<(z + 1), y0..<(y0 + rows), 0..<W]))
            data.withUnsafeBufferPointer { d in
                for y in 0..<rows {
                    let cy = (y0 + y) / F
                    for x in 0..<W { sums[cy * cw + x / F] += Double(d[y * W + x]); counts[cy * cw + x / F] += 1 }
                }
            }
        }
        return (zip(sums, counts).map { $0 / $1 }, ch, cw)
    }

    /// The automatic rule (see `MaskRule.description`) on block means.
    static func automatic(_ means: [Double], height: Int, width: Int) -> SliceMask {
        var hist = [Double](repeating: 0, count: 256)
        for m in means { hist[min(255, max(0, Int(m.rounded())))] += 1 }
        let t = otsu(hist)
        let n0 = hist[0...t].reduce(0, +)
        let mean0 = n0 > 0 ? (0...t).reduce(0.0) { $0 + Double($1) * hist[$1] } / n0 : 0
        var cells = means.map { $0 > Double(t) ? UInt8(1) : 0 }
        if mean0 >= 48 { cells = .init(repeating: 1, count: means.count) }
        cells = morph(cells, height, width, radius: 2, dilate: true)
        cells = morph(cells, height, width, radius: 2, dilate: false)
        cells = morph(cells, height, width, radius: 1, dilate: true)
        return SliceMask(factor: MaskRule.automaticCell, height: height, width: width, cells: cells)
    }

    /// Otsu's threshold: the level t maximising the between-class variance of {≤ t} and {> t}.
    static func otsu(_ hist: [Double]) -> Int {
        let total = hist.reduce(0, +)
        let sumAll = hist.enumerated().reduce(0.0) { $0 + Double($1.offset) * $1.element }
        var w0 = 0.0, sum0 = 0.0, best = -1.0, bestT = 0
        for t in 0..<255 {
            w0 += hist[t]; sum0 += Double(t) * hist[t]
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = sum0 / w0, m1 = (sumAll - sum0) / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1)
            if between > best { best = between; bestT = t }
        }
        return bestT
    }

    /// Square dilation (max) or erosion (min) with a (2r+1)² window; outside the grid counts as background for
    /// dilation and as tissue for erosion (so a closing does not eat tissue at the slice's border).
    static func morph(_ c: [UInt8], _ h: Int, _ w: Int, radius r: Int, dilate: Bool) -> [UInt8] {
        var out = c
        for y in 0..<h { for x in 0..<w {
            var v: UInt8 = dilate ? 0 : 1
            for yy in max(0, y - r)...min(h - 1, y + r) { for xx in max(0, x - r)...min(w - 1, x + r) {
                v = dilate ? max(v, c[yy * w + xx]) : min(v, c[yy * w + xx])
            } }
            out[y * w + x] = v
        } }
        return out
    }
}
