import Foundation
import VolumeStore

/// Spatial aggregation of a run's channels before clustering. A pixel's latents describe the network's 134-px view
/// of it, so neighbouring pixels share most of what they see, and a single pixel's coefficients vary with what sits
/// right under it (a cell body, an axon) more than with the layer around it: a Gaussian mean over the neighbourhood
/// keeps the layer and averages the cell out. The mean is normalised within a support (Σ w·m·x / Σ w·m, m = 1 on
/// the support), so it never mixes in another class's or an unpredicted pixel's latents, and it is computed per
/// block from a window grown by the kernel's reach: memory proportional to a block, whatever the slice size.
struct SpatialSmoothing: Sendable {
    /// Standard deviation in run pixels.
    let sigma: Double
    /// Weights at offsets −radius…radius, radius = ⌊4σ + ½⌋ (scipy.ndimage.gaussian_filter's default truncation).
    let kernel: [Double]
    var radius: Int { kernel.count / 2 }

    init(sigma: Double) {
        self.sigma = sigma
        let r = Int(4 * sigma + 0.5)
        let w = (-r...r).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let s = w.reduce(0, +)
        kernel = w.map { $0 / s }
    }

    /// The normalised mean at `pixels` (indices into the h × w target) of planes laid out H × W (channel-major,
    /// `channels` of them) whose target starts at (oy, ox); `support` (H × W) is 1 where a pixel counts, else 0.
    /// Returns n × channels rows; a target pixel with no support in reach gets NaN.
    func smooth(_ planes: [Double], channels c: Int, H: Int, W: Int, support: [Double], oy: Int, ox: Int,
                h: Int, w: Int, pixels: [Int]) -> [Double] {
        let r = radius
        // Horizontal pass over every window row, only at the target's columns; then vertical at the target's pixels.
        func horizontal(_ src: UnsafePointer<Double>) -> [Double] {
            var out = [Double](repeating: 0, count: H * w)
            kernel.withUnsafeBufferPointer { k in
                for y in 0..<H {
                    let row = src + y * W
                    for x in 0..<w {
                        let cx = ox + x
                        let a = max(0, cx - r), b = min(W - 1, cx + r)
                        var s = 0.0
                        for t in a...b { s += k[t - cx + r] * row[t] }
                        out[y * w + x] = s
                    }
                }
            }
            return out
        }
        func vertical(_ hz: [Double], at p: Int) -> Double {
            let y = p / w, x = p % w, cy = oy + y
            let a = max(0, cy - r), b = min(H - 1, cy + r)
            var s = 0.0
            for t in a...b { s += kernel[t - cy + r] * hz[t * w + x] }
            return s
        }
        let den = support.withUnsafeBufferPointer { horizontal($0.baseAddress!) }
        let weight = pixels.map { vertical(den, at: $0) }
        var out = [Double](repeating: .nan, count: pixels.count * c)
        var masked = [Double](repeating: 0, count: H * W)
        for ch in 0..<c {
            planes.withUnsafeBufferPointer { p in
                for i in 0..<(H * W) { masked[i] = support[i] > 0 ? p[ch * H * W + i] : 0 }
            }
            let num = masked.withUnsafeBufferPointer { horizontal($0.baseAddress!) }
            for (i, p) in pixels.enumerated() where weight[i] > 0 { out[i * c + ch] = vertical(num, at: p) / weight[i] }
        }
        return out
    }

    /// The block's smoothed rows: channels `channels` of the channel-first array `a` around block `b`, averaged over
    /// the pixels of the window whose label passes `support` and whose latents were predicted, taken at the block's
    /// pixels under `mask` that were predicted (as RunArrays.rows takes them).
    func rows(_ run: RunArrays, _ a: ZarrArray, _ b: RunArrays.Block, channels: [Int], mask: [Bool],
              support: (UInt8) -> Bool) async throws -> (x: [Double], pixels: [Int]) {
        let (h, w) = run.extent(b)
        let y0 = b.by * run.block, x0 = b.bx * run.block, r = radius
        let ry = max(0, y0 - r)..<min(run.height, y0 + h + r), rx = max(0, x0 - r)..<min(run.width, x0 + w + r)
        let H = ry.count, W = rx.count, C = a.shape[0]
        let labels = try await run.labels.read(Box([b.z..<(b.z + 1), ry, rx]))
        let raw = try await a.read(Box([0..<C, b.z..<(b.z + 1), ry, rx]))
        let half = a.metadata.dtype.size == 2
        var planes = [Double](repeating: 0, count: channels.count * H * W)
        var sup = [Double](repeating: 0, count: H * W)
        raw.withUnsafeBytes { r in
            func value(_ ch: Int, _ i: Int) -> Double {
                half ? Double(Float(r.loadUnaligned(fromByteOffset: 2 * (ch * H * W + i), as: Float16.self)))
                     : Double(r.loadUnaligned(fromByteOffset: 4 * (ch * H * W + i), as: Float.self))
            }
            for i in 0..<(H * W) where support(labels[i]) && !value(0, i).isNaN { sup[i] = 1 }
            for (j, ch) in channels.enumerated() { for i in 0..<(H * W) where sup[i] > 0 { planes[j * H * W + i] = value(ch, i) } }
        }
        let oy = y0 - ry.lowerBound, ox = x0 - rx.lowerBound
        // The block's pixels under the mask that were predicted themselves.
        var pixels: [Int] = []
        for y in 0..<h { for x in 0..<w where mask[y * w + x] && sup[(oy + y) * W + ox + x] > 0 { pixels.append(y * w + x) } }
        guard !pixels.isEmpty else { return ([], []) }
        let x = smooth(planes, channels: channels.count, H: H, W: W, support: sup, oy: oy, ox: ox, h: h, w: w, pixels: pixels)
        return (x, pixels)
    }
}
