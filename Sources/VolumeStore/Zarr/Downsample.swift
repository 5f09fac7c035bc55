/// How a pyramid level summarises each 2×2 window of the level below (over the last two axes, y and x). Windows at
/// the array's edge hold fewer pixels and take what exists.
public enum Reduction: String, Sendable {
    /// The mean of the window's values that are not NaN (all NaN → NaN), computed in double precision and rounded
    /// once to the element type (integers: half away from zero): intensity, probabilities, features, factors.
    case mean
    /// The most frequent value of the window; a tie goes to the smallest value (so 2 × 0 + 2 × 3 → 0): label maps,
    /// where a mean would invent classes.
    case mode
}

extension Reduction {
    /// Reduces the 2×2 windows of `src` (`planes` planes of `height` × `width` valid pixels, rows `srcRow` elements
    /// apart, planes `srcPlane` apart) into `dst` at (`y0`, `x0`) of planes `dstRow` × … (rows `dstRow` apart,
    /// planes `dstPlane` apart): ⌈height/2⌉ × ⌈width/2⌉ pixels per plane. Buffers are native-endian `dtype`.
    func reduce(_ src: UnsafeRawBufferPointer, planes: Int, height: Int, width: Int, srcRow: Int, srcPlane: Int,
                into dst: UnsafeMutableRawBufferPointer, y0: Int, x0: Int, dstRow: Int, dstPlane: Int, dtype: DataType) {
        let oh = (height + 1) / 2, ow = (width + 1) / 2
        // The two element types the run writes most, without the generic per-element switch.
        if self == .mean && dtype == .float32 {
            let s = src.bindMemory(to: Float.self), d = dst.bindMemory(to: Float.self)
            for p in 0..<planes { for y in 0..<oh { for x in 0..<ow {
                var sum = 0.0, n = 0.0
                for dy in 0..<2 where 2 * y + dy < height { for dx in 0..<2 where 2 * x + dx < width {
                    let v = s[p * srcPlane + (2 * y + dy) * srcRow + 2 * x + dx]
                    if !v.isNaN { sum += Double(v); n += 1 }
                } }
                d[p * dstPlane + (y0 + y) * dstRow + x0 + x] = Float(sum / n)
            } } }
            return
        }
        if self == .mode && dtype == .uint8 {
            let s = src.bindMemory(to: UInt8.self), d = dst.bindMemory(to: UInt8.self)
            var w = [UInt8](repeating: 0, count: 4)
            for p in 0..<planes { for y in 0..<oh { for x in 0..<ow {
                var n = 0
                for dy in 0..<2 where 2 * y + dy < height { for dx in 0..<2 where 2 * x + dx < width {
                    w[n] = s[p * srcPlane + (2 * y + dy) * srcRow + 2 * x + dx]; n += 1
                } }
                d[p * dstPlane + (y0 + y) * dstRow + x0 + x] = Reduction.mode(w, n)
            } } }
            return
        }
        var w = [Double](repeating: 0, count: 4)
        for p in 0..<planes { for y in 0..<oh { for x in 0..<ow {
            var n = 0
            for dy in 0..<2 where 2 * y + dy < height { for dx in 0..<2 where 2 * x + dx < width {
                w[n] = loadElement(src, p * srcPlane + (2 * y + dy) * srcRow + 2 * x + dx, dtype); n += 1
            } }
            let v: Double
            switch self {
            case .mean:
                var sum = 0.0, k = 0.0
                for i in 0..<n where !w[i].isNaN { sum += w[i]; k += 1 }
                v = sum / k
            case .mode: v = Reduction.mode(w, n)
            }
            storeElement(dst, p * dstPlane + (y0 + y) * dstRow + x0 + x, dtype, v)
        } } }
    }

    /// The most frequent of the first `n` values (n ≤ 4); ties → the smallest.
    @inline(__always)
    static func mode<T: Comparable>(_ w: [T], _ n: Int) -> T {
        var best = w[0], count = 0
        for i in 0..<n {
            var c = 0
            for j in 0..<n where w[j] == w[i] { c += 1 }
            if c > count || (c == count && w[i] < best) { best = w[i]; count = c }
        }
        return best
    }
}
