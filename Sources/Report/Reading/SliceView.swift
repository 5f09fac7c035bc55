/// The part of one slice an image shows, in run-grid pixels, and the image's size: never larger than the region
/// (no upsampling), at most `maxWidth` wide, aspect kept.
///
/// Image column u covers run columns [⌈u·n/w⌉, ⌈(u+1)·n/w⌉) of the region (n run columns, w image columns): the
/// footprints partition the region, so run column c lands in image column ⌊c·w/n⌋. Rows alike. Float maps show the
/// NaN-aware mean of the footprint; integer maps (labels, clusters) its centre pixel, so every image pixel is a real
/// label, never a blend of two.
public struct SliceView: Sendable, Equatable {
    public let z: Int
    public let rows: Range<Int>, cols: Range<Int>
    public let width: Int, height: Int

    public init(z: Int, rows: Range<Int>, cols: Range<Int>, maxWidth: Int) {
        self.z = z; self.rows = rows; self.cols = cols
        width = max(1, min(maxWidth, cols.count))
        height = max(1, min(rows.count, Int((Double(rows.count) * Double(width) / Double(cols.count)).rounded())))
    }

    /// The image column of run column c (inside `cols`).
    @inline(__always) func imageCol(_ c: Int) -> Int { (c - cols.lowerBound) * width / cols.count }
    @inline(__always) func imageRow(_ r: Int) -> Int { (r - rows.lowerBound) * height / rows.count }

    /// The run column at the centre of image column u's footprint.
    func centreCol(_ u: Int) -> Int { cols.lowerBound + Self.centre(u, n: cols.count, m: width) }
    func centreRow(_ u: Int) -> Int { rows.lowerBound + Self.centre(u, n: rows.count, m: height) }

    private static func centre(_ u: Int, n: Int, m: Int) -> Int {
        let lo = (u * n + m - 1) / m, hi = ((u + 1) * n + m - 1) / m
        return (lo + hi - 1) / 2
    }
}
