/// What the tissue masks hold, for the memory plan: `MaskProvider.kept` slice masks (one byte per cell) plus the
/// buffers of a mask being computed — the automatic rule's per-cell sums and counts (two doubles a cell), its
/// morphology copies and one band of source rows; a `--mask` slice's band of rows. Blocks are issued slice by slice,
/// so at most two slices' masks are computed at once (the next slice's first blocks while this one's last finish).
public enum MaskMemory {
    /// Rows of a `--mask` slice read at once.
    static let maskBandRows = 64

    /// Rows of the source read at once by the automatic rule: whole chunk rows, whole cells.
    static func automaticBandRows(sourceChunkRows: Int) -> Int {
        let f = MaskRule.automaticCell
        return max(f, sourceChunkRows / f * f)
    }

    /// Peak bytes of the masks of a run over a source of `sourceShape` (z, y, x) with `sourceChunkRows`-row chunks
    /// of `elementSize`-byte elements. A `--mask` is planned at the source's resolution (the largest it may be) in
    /// 8-byte elements (the widest dtype).
    public static func plannedBytes(rule: MaskRule, sourceShape s: [Int], sourceChunkRows: Int, elementSize: Int) -> Int {
        guard s.count == 3 else { return 0 }
        let H = s[1], W = s[2]
        switch rule {
        case .none:
            return 0
        case .automatic:
            let f = MaskRule.automaticCell
            let cells = ((H + f - 1) / f) * ((W + f - 1) / f)
            let computing = 16 * cells + 3 * cells + automaticBandRows(sourceChunkRows: sourceChunkRows) * W * elementSize
            return MaskProvider.kept * cells + 2 * computing
        case .source:
            let computing = H * W + maskBandRows * W * 8
            return MaskProvider.kept * H * W + 2 * computing
        }
    }
}
