/// An axis-aligned region of an N-d array: `start` and `size` per axis, C order (z, y, x for volumes).
public struct Box: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var start: [Int]
    public var size: [Int]

    public init(start: [Int], size: [Int]) {
        precondition(start.count == size.count, "Box start and size must have the same rank")
        self.start = start; self.size = size
    }

    /// A box from half-open ranges, one per axis.
    public init(_ ranges: [Range<Int>]) {
        self.init(start: ranges.map(\.lowerBound), size: ranges.map(\.count))
    }

    public var end: [Int] { zip(start, size).map { $0 + $1 } }
    public var count: Int { size.reduce(1, *) }
    public var rank: Int { start.count }
    public var ranges: [Range<Int>] { zip(start, size).map { $0..<($0 + $1) } }

    /// The part of this box inside another, or nil when they do not overlap.
    public func intersection(_ other: Box) -> Box? {
        var s = [Int](), z = [Int]()
        for d in 0..<rank {
            let lo = max(start[d], other.start[d]), hi = min(end[d], other.end[d])
            if hi <= lo { return nil }
            s.append(lo); z.append(hi - lo)
        }
        return Box(start: s, size: z)
    }

    public func contains(_ other: Box) -> Bool {
        (0..<rank).allSatisfy { other.start[$0] >= start[$0] && other.end[$0] <= end[$0] }
    }

    public var description: String {
        "[" + zip(start, end).map { "\($0):\($1)" }.joined(separator: ", ") + "]"
    }
}

/// Copies an `extent`-sized block between two C-order buffers with the given shapes and origins.
/// The innermost axis is copied as one contiguous run per row.
public func copyBlock(from src: UnsafeRawPointer, shape srcShape: [Int], at srcStart: [Int],
                      to dst: UnsafeMutableRawPointer, shape dstShape: [Int], at dstStart: [Int],
                      extent: [Int], elementSize: Int) {
    let n = extent.count
    guard n > 0, extent.allSatisfy({ $0 > 0 }) else { return }
    func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: elementSize, count: n)
        for d in stride(from: n - 2, through: 0, by: -1) { s[d] = s[d + 1] * shape[d + 1] }
        return s
    }
    let ss = strides(srcShape), ds = strides(dstShape)
    var srcBase = 0, dstBase = 0
    for d in 0..<n { srcBase += srcStart[d] * ss[d]; dstBase += dstStart[d] * ds[d] }
    let run = extent[n - 1] * elementSize
    if n == 1 { dst.advanced(by: dstBase).copyMemory(from: src.advanced(by: srcBase), byteCount: run); return }
    var idx = [Int](repeating: 0, count: n - 1)
    var so = srcBase, doff = dstBase
    while true {
        dst.advanced(by: doff).copyMemory(from: src.advanced(by: so), byteCount: run)
        var d = n - 2
        while d >= 0 {
            idx[d] += 1; so += ss[d]; doff += ds[d]
            if idx[d] < extent[d] { break }
            so -= ss[d] * extent[d]; doff -= ds[d] * extent[d]; idx[d] = 0
            d -= 1
        }
        if d < 0 { return }
    }
}
