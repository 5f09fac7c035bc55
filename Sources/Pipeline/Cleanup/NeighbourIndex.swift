/// Exact k-nearest-labelled-pixel queries over one slice, from a small set of candidate pixels in a uniform grid.
///
/// Which pixels are candidates: the k nearest labelled pixels of an unlabelled pixel u all lie within Chebyshev
/// distance k of a pixel that is not labelled. (Take p among them; step from p towards u along the axis where they
/// differ most: the squared distance drops by 2|d|−1 > 0. If the first k steps all landed on labelled pixels, those k
/// pixels would all be strictly nearer than p, so p would not be among the k nearest; the path stays between p and u,
/// so inside the image.) That band along the labelled set's boundary is small next to the slice, and it is found
/// tile by tile; the grid answers queries however far away the nearest labels are (a hole larger than a tile).
///
/// Tie rule (documented in README): neighbours are ordered by squared distance, then row, then column; the first k
/// vote; the most frequent class wins, and a tie in the vote goes to the smallest class id (as scikit-learn's
/// KNeighborsClassifier does with uniform weights).
struct NeighbourIndex {
    let height: Int, width: Int
    /// Cell side: fixed, or (0) chosen at build time for ~8 candidates per cell.
    private(set) var cell: Int
    private(set) var cellsY = 0, cellsX = 0
    private var pending: [(Int32, Int32, UInt8)] = []
    private var start: [Int] = []
    private var ys: [Int32] = [], xs: [Int32] = [], labels: [UInt8] = []

    init(height: Int, width: Int, cell: Int = 0) {
        self.height = height; self.width = width; self.cell = cell
    }

    var count: Int { ys.count + pending.count }

    mutating func insert(y: Int, x: Int, label: UInt8) { pending.append((Int32(y), Int32(x), label)) }

    /// Sorts the inserted pixels into cells (counting sort); call once, after the inserts, before queries.
    mutating func build() {
        let n = pending.count
        if cell == 0 {
            let density = Double(max(1, n)) / Double(max(1, height * width))
            cell = max(2, min(256, Int((8 / density).squareRoot())))
        }
        cellsY = (height + cell - 1) / cell; cellsX = (width + cell - 1) / cell
        start = [Int](repeating: 0, count: cellsY * cellsX + 1)
        for p in pending { start[Int(p.0) / cell * cellsX + Int(p.1) / cell + 1] += 1 }
        for i in 1..<start.count { start[i] += start[i - 1] }
        var fill = start
        ys = [Int32](repeating: 0, count: n); xs = ys; labels = [UInt8](repeating: 0, count: n)
        for p in pending {
            let c = Int(p.0) / cell * cellsX + Int(p.1) / cell
            let i = fill[c]; fill[c] += 1
            ys[i] = p.0; xs[i] = p.1; labels[i] = p.2
        }
        pending = []
    }

    /// The winning class among the k nearest candidates of (y, x), or 0 when there is no candidate at all.
    func vote(y: Int, x: Int, k: Int) -> UInt8 {
        guard !ys.isEmpty else { return 0 }
        // The k best so far, sorted by (d², y, x).
        var best: [(d: Int, y: Int32, x: Int32, label: UInt8)] = []
        best.reserveCapacity(k + 1)
        let cy = y / cell, cx = x / cell
        let maxRing = max(max(cy, cellsY - 1 - cy), max(cx, cellsX - 1 - cx))
        func scan(_ c: Int) {
            for i in start[c]..<start[c + 1] {
                let dy = Int(ys[i]) - y, dx = Int(xs[i]) - x
                let d = dy * dy + dx * dx
                if best.count == k {
                    let w = best[k - 1]
                    if d > w.d || (d == w.d && (ys[i], xs[i]) > (w.y, w.x)) { continue }
                }
                var j = best.count
                while j > 0 && (best[j - 1].d > d || (best[j - 1].d == d && (best[j - 1].y, best[j - 1].x) > (ys[i], xs[i]))) { j -= 1 }
                best.insert((d, ys[i], xs[i], labels[i]), at: j)
                if best.count > k { best.removeLast() }
            }
        }
        var ring = 0
        while ring <= maxRing {
            for gy in max(0, cy - ring)...min(cellsY - 1, cy + ring) {
                if gy == cy - ring || gy == cy + ring {
                    for gx in max(0, cx - ring)...min(cellsX - 1, cx + ring) { scan(gy * cellsX + gx) }
                } else {
                    // Inner rows of the ring: only its two edge columns.
                    if cx - ring >= 0 { scan(gy * cellsX + cx - ring) }
                    if cx + ring < cellsX { scan(gy * cellsX + cx + ring) }
                }
            }
            // Cells of the next ring are at least ring·cell + 1 pixels away along one axis.
            if best.count == k {
                let reach = ring * cell + 1
                if reach * reach > best[k - 1].d { break }
            }
            ring += 1
        }
        guard !best.isEmpty else { return 0 }
        var winner: UInt8 = 0, most = 0
        for b in best {
            let n = best.reduce(0) { $0 + ($1.label == b.label ? 1 : 0) }
            if n > most || (n == most && b.label < winner) { winner = b.label; most = n }
        }
        return winner
    }
}
