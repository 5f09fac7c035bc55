/// Turns downsampled planes into images: greyscale raw, label maps over it, heatmaps, RGB composites, colour bars
/// and matrices. Pure functions of their inputs (the tests recompute them from the arrays with numpy).
public enum Render {
    /// How much of a label's colour goes into an overlay pixel (the rest is the grey underneath).
    public static let overlayAlpha: Float = 0.5

    /// The lo and hi quantiles of the finite values (nil when there are none), from at most ~250k of them.
    public static func quantiles(_ values: ArraySlice<Float>, _ lo: Double, _ hi: Double) -> (Float, Float)? {
        let step = max(1, values.count / 250_000)
        var sample: [Float] = []
        sample.reserveCapacity(values.count / step + 1)
        var i = values.startIndex
        while i < values.endIndex { let v = values[i]; if v.isFinite { sample.append(v) }; i += step }
        guard !sample.isEmpty else { return nil }
        sample.sort()
        func q(_ p: Double) -> Float { sample[min(sample.count - 1, Int(p * Double(sample.count - 1)))] }
        return (q(lo), q(hi))
    }

    /// Greyscale of a mean-downsampled raw plane, stretched from its 0.5th to 99.5th percentile to 0…255 (NaN: 0).
    public static func grey(_ plane: [Float], width: Int, height: Int) -> Image {
        var img = Image(width: width, height: height, channels: 1)
        let (lo, hi) = quantiles(plane[...], 0.005, 0.995) ?? (0, 255)
        let span = max(hi - lo, 1e-6)
        for i in 0..<(width * height) where plane[i].isFinite {
            img.pixels[i] = UInt8(max(0, min(255, ((plane[i] - lo) / span * 255).rounded())))
        }
        return img
    }

    /// An integer map over greyscale: pixels with id > 0 blend the id's fixed colour with the grey underneath
    /// (`overlayAlpha`); id 0 shows the grey alone. Without a grey image, ids sit on white.
    public static func overlay(_ ids: [Int32], over grey: Image?, width: Int, height: Int, palette: Palette.Kind) -> Image {
        var img = Image(width: width, height: height, channels: 3)
        let a = overlayAlpha
        for i in 0..<(width * height) {
            let g = Float(grey?.pixels[i] ?? 255)
            guard ids[i] > 0 else { img.set(i, RGB(UInt8(g), UInt8(g), UInt8(g))); continue }
            let c = Palette.color(Int(ids[i]), palette)
            func mix(_ v: UInt8) -> UInt8 { UInt8(((1 - a) * g + a * Float(v)).rounded()) }
            img.set(i, RGB(mix(c.r), mix(c.g), mix(c.b)))
        }
        return img
    }

    /// A heatmap of one plane in viridis, lo → the first colour, hi → the last; NaN transparent.
    public static func heatmap(_ plane: ArraySlice<Float>, width: Int, height: Int, lo: Float, hi: Float) -> Image {
        var img = Image(width: width, height: height, channels: 4)
        let span = hi > lo ? hi - lo : 1
        for (i, v) in plane.enumerated() where v.isFinite { img.set(i, Colormap.viridis((v - lo) / span)) }
        return img
    }

    /// Three planes as the red, green and blue channels, each mapped linearly from its range to 0…255 (clamped);
    /// pixels where any is NaN are transparent.
    public static func composite(_ planes: [Float], width: Int, height: Int, ranges: [(Float, Float)]) -> Image {
        var img = Image(width: width, height: height, channels: 4)
        let n = width * height
        for i in 0..<n {
            let v = (0..<3).map { planes[$0 * n + i] }
            guard v.allSatisfy(\.isFinite) else { continue }
            let c = (0..<3).map { k -> UInt8 in
                let (lo, hi) = ranges[k]
                return UInt8(max(0, min(255, ((v[k] - lo) / max(hi - lo, 1e-12) * 255).rounded())))
            }
            img.set(i, RGB(c[0], c[1], c[2]))
        }
        return img
    }

    /// viridis from left (0) to right (1), 256 × 12 pixels: the colour bar the page labels with each map's range.
    public static func colorbar() -> Image {
        var img = Image(width: 256, height: 12, channels: 3)
        for y in 0..<12 { for x in 0..<256 { img.set(y * 256 + x, Colormap.viridis[x]) } }
        return img
    }

    /// A matrix as square cells of `cell` pixels in viridis, each value mapped from lo…hi.
    public static func matrix(_ m: [[Double]], lo: Double, hi: Double, cell: Int = 40) -> Image {
        let rows = m.count, cols = m.first?.count ?? 0
        var img = Image(width: max(1, cols * cell), height: max(1, rows * cell), channels: 3)
        let span = hi > lo ? hi - lo : 1
        for r in 0..<rows { for c in 0..<cols {
            let color = Colormap.viridis(Float((m[r][c] - lo) / span))
            for y in 0..<cell { for x in 0..<cell { img.set((r * cell + y) * img.width + c * cell + x, color) } }
        } }
        return img
    }
}
