import Foundation
import VolumeStore

/// Spatial aggregation of a run's channels before clustering. A pixel's latents describe the network's 134-px view
/// of it, so neighbouring pixels share most of what they see, and a single pixel's coefficients vary with what sits
/// right under it (a cell body, an axon) more than with the layer around it: a Gaussian mean over the neighbourhood
/// keeps the layer and averages the cell out. The mean is normalised within a support (Σ w·m·x / Σ w·m, m = 1 on
/// the support), so it never mixes in another class's or an unpredicted pixel's latents, and it is computed per
/// block from a window grown by the kernel's reach: memory proportional to a block, whatever the slice size.
///
/// With `across`, the mean is oriented: σ `sigma` along the layers and σ `across` in depth. An isotropic mean wide
/// enough to average out the cells (and the barrels of L4, ~180 px apart) also averages neighbouring layers together
/// (the phantom's L1 is ~100 px thick); layers run far along the cortex, so the long axis goes there. The direction
/// is one per slice, from the structure tensors of the clustered channels over all of the slice's masked pixels (the
/// direction in which they change most is across the layers): per block it is unreliable — a block inside one thick
/// layer sees mostly the variation along it (the demo's slices: a third of the blocks pointed the wrong way, while the
/// slice's tensor is within 2° of the cortex's normal). Each channel's tensor votes with unit weight (`layerDirection`):
/// summed raw, one loud channel that does not follow the layers outvotes all the others. One direction suits cortex
/// that is straight at the slice's scale, as the phantom's is; a strongly curved cortex would need a direction field.
struct SpatialSmoothing: Sendable {
    /// Standard deviation in run pixels (along the layers when `across` is set).
    let sigma: Double
    /// Standard deviation across the layers (run pixels); nil: isotropic.
    let across: Double?
    /// Weights at offsets −radius…radius, radius = ⌊4σ + ½⌋ (scipy.ndimage.gaussian_filter's default truncation).
    let kernel: [Double]
    var radius: Int { kernel.count / 2 }
    /// How far around a block its window reaches: the kernel's radius, or for the oriented mean both passes' reach
    /// (each may point anywhere; +1 each for the bilinear taps).
    var reach: Int { across.map { radius + Self.weights($0).count / 2 + 2 } ?? radius }

    init(sigma: Double, across: Double? = nil) {
        self.sigma = sigma; self.across = across
        kernel = Self.weights(sigma)
    }

    static func weights(_ sigma: Double) -> [Double] {
        let r = Int(4 * sigma + 0.5)
        let w = (-r...r).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let s = w.reduce(0, +)
        return w.map { $0 / s }
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
        return Self.normalised(planes, channels: c, H: H, W: W, support: support, pixels: pixels.count) { src in
            let hz = horizontal(src)
            return pixels.map { vertical(hz, at: $0) }
        }
    }

    /// Σ w·m·x / Σ w·m per channel at the pixels, for a kernel `apply` that maps an H × W plane to its values at the
    /// pixels (NaN where no support is in reach).
    private static func normalised(_ planes: [Double], channels c: Int, H: Int, W: Int, support: [Double], pixels n: Int,
                                   apply: (UnsafePointer<Double>) -> [Double]) -> [Double] {
        let weight = support.withUnsafeBufferPointer { apply($0.baseAddress!) }
        var out = [Double](repeating: .nan, count: n * c)
        var masked = [Double](repeating: 0, count: H * W)
        for ch in 0..<c {
            planes.withUnsafeBufferPointer { p in
                for i in 0..<(H * W) { masked[i] = support[i] > 0 ? p[ch * H * W + i] : 0 }
            }
            let num = masked.withUnsafeBufferPointer { apply($0.baseAddress!) }
            for i in 0..<n where weight[i] > 0 { out[i * c + ch] = num[i] / weight[i] }
        }
        return out
    }

    /// The normalised mean under a Gaussian of σ `sigma` along the unit vector `along` (y, x) and σ `across`
    /// perpendicular to it, at `pixels` of the target (arguments as `smooth`): a 1-D Gaussian along `along` on the
    /// grid around the pixels, then one across at the pixels. A tap off the grid is spread bilinearly over its four
    /// neighbours; the offsets are the same for every pixel, so each pass is one fixed sparse kernel (exactly
    /// scipy's separable filter when `along` is an axis). Outside the window counts as no support.
    func oriented(_ planes: [Double], channels c: Int, H: Int, W: Int, support: [Double], oy: Int, ox: Int,
                  h: Int, w: Int, pixels: [Int], along u: (y: Double, x: Double)) -> [Double] {
        let first = Self.taps(kernel, along: u), second = Self.taps(Self.weights(across ?? sigma), along: (y: -u.x, x: u.y))
        // The grid positions the second pass reads: window index → slot in the first pass's output (−1: not read).
        // Offsets are recomputed per pixel rather than stored (a list per pixel took ~130 MB for a 352² block).
        var slot = [Int32](repeating: -1, count: H * W), positions: [Int] = []
        for p in pixels {
            let py = oy + p / w, px = ox + p % w
            for t in second {
                let y = py + t.dy, x = px + t.dx
                guard y >= 0 && y < H && x >= 0 && x < W, slot[y * W + x] < 0 else { continue }
                slot[y * W + x] = Int32(positions.count); positions.append(y * W + x)
            }
        }
        func pass(_ src: UnsafePointer<Double>) -> [Double] {
            // First pass at the needed positions, then the second at the pixels (taps in order: outside the window
            // contributes nothing).
            let grid = positions.map { q -> Double in
                let y = q / W, x = q % W
                var s = 0.0
                for t in first {
                    let yy = y + t.dy, xx = x + t.dx
                    if yy >= 0 && yy < H && xx >= 0 && xx < W { s += t.w * src[yy * W + xx] }
                }
                return s
            }
            return pixels.map { p in
                let py = oy + p / w, px = ox + p % w
                var s = 0.0
                for t in second {
                    let y = py + t.dy, x = px + t.dx
                    if y >= 0 && y < H && x >= 0 && x < W { s += t.w * grid[Int(slot[y * W + x])] }
                }
                return s
            }
        }
        return Self.normalised(planes, channels: c, H: H, W: W, support: support, pixels: pixels.count, apply: pass)
    }

    /// A 1-D kernel laid along the unit vector u: tap k at (k·u.y, k·u.x), split bilinearly over the four grid
    /// neighbours, weights of the same offset summed; sorted, so that sums run in one order.
    static func taps(_ weights: [Double], along u: (y: Double, x: Double)) -> [(dy: Int, dx: Int, w: Double)] {
        let r = weights.count / 2
        var byOffset: [Int: Double] = [:]
        let span = 2 * r + 3
        for k in -r...r {
            let py = Double(k) * u.y, px = Double(k) * u.x
            let y0 = Int(py.rounded(.down)), x0 = Int(px.rounded(.down))
            let fy = py - Double(y0), fx = px - Double(x0)
            for (dy, dx, f) in [(0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)] where f > 0 {
                byOffset[(y0 + dy + r + 1) * span + (x0 + dx + r + 1), default: 0] += f * weights[k + r]
            }
        }
        return byOffset.keys.sorted().map { key in (dy: key / span - r - 1, dx: key % span - r - 1, w: byOffset[key]!) }
    }

    /// A block's window: channels `channels` of `a` around block `b`, grown by `reach` (clipped to the slice), with the
    /// support (1 where the label passes `support` and the latents were predicted) and where the block starts in it.
    private func window(_ run: RunArrays, _ a: ZarrArray, _ b: RunArrays.Block, channels: [Int], support: (UInt8) -> Bool, reach r: Int)
        async throws -> (planes: [Double], sup: [Double], H: Int, W: Int, oy: Int, ox: Int) {
        let (h, w) = run.extent(b)
        let y0 = b.by * run.block, x0 = b.bx * run.block
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
        return (planes, sup, H, W, y0 - ry.lowerBound, x0 - rx.lowerBound)
    }

    /// The block's smoothed rows: channels `channels` of the channel-first array `a` around block `b`, averaged over
    /// the pixels of the window whose label passes `support` and whose latents were predicted, taken at the block's
    /// pixels under `mask` that were predicted (as RunArrays.rows takes them); oriented along `along` when `across`
    /// is set.
    func rows(_ run: RunArrays, _ a: ZarrArray, _ b: RunArrays.Block, channels: [Int], mask: [Bool],
              support: (UInt8) -> Bool, along: (y: Double, x: Double)? = nil) async throws -> (x: [Double], pixels: [Int]) {
        let (h, w) = run.extent(b)
        let (planes, sup, H, W, oy, ox) = try await window(run, a, b, channels: channels, support: support, reach: reach)
        // The block's pixels under the mask that were predicted themselves.
        var pixels: [Int] = []
        for y in 0..<h { for x in 0..<w where mask[y * w + x] && sup[(oy + y) * W + ox + x] > 0 { pixels.append(y * w + x) } }
        guard !pixels.isEmpty else { return ([], []) }
        if across != nil, let along {
            return (oriented(planes, channels: channels.count, H: H, W: W, support: sup, oy: oy, ox: ox, h: h, w: w, pixels: pixels, along: along), pixels)
        }
        return (smooth(planes, channels: channels.count, H: H, W: W, support: sup, oy: oy, ox: ox, h: h, w: w, pixels: pixels), pixels)
    }

    /// `rows`, and per row how fast the mean changes there: Σ over channels of |∇x̄|², by central differences in run
    /// pixels (one-sided where one neighbour has no support, 0 along an axis where neither has). The neighbours are
    /// averaged too, a ring one pixel wide around the block included, so a pixel on a block's edge gets the value it
    /// would get anywhere else: the result does not depend on how the slice is cut into blocks or shards.
    func rowsWithChange(_ run: RunArrays, _ a: ZarrArray, _ b: RunArrays.Block, channels: [Int], mask: [Bool],
                        support: (UInt8) -> Bool, along: (y: Double, x: Double)? = nil) async throws -> (x: [Double], pixels: [Int], change: [Double]) {
        let (h, w) = run.extent(b), c = channels.count
        let (planes, sup, H, W, oy, ox) = try await window(run, a, b, channels: channels, support: support, reach: reach + 1)
        var pixels: [Int] = []
        for y in 0..<h { for x in 0..<w where mask[y * w + x] && sup[(oy + y) * W + ox + x] > 0 { pixels.append(y * w + x) } }
        guard !pixels.isEmpty else { return ([], [], []) }
        // The target grown by one pixel on each side: its supported positions the rows and their four neighbours need.
        let eh = h + 2, ew = w + 2, eoy = oy - 1, eox = ox - 1
        var slot = [Int](repeating: -1, count: eh * ew), positions: [Int] = []
        func need(_ ey: Int, _ ex: Int) {
            let wy = eoy + ey, wx = eox + ex
            guard wy >= 0, wy < H, wx >= 0, wx < W, sup[wy * W + wx] > 0, slot[ey * ew + ex] < 0 else { return }
            slot[ey * ew + ex] = positions.count; positions.append(ey * ew + ex)
        }
        for p in pixels {
            let ey = p / w + 1, ex = p % w + 1
            need(ey, ex); need(ey - 1, ex); need(ey + 1, ex); need(ey, ex - 1); need(ey, ex + 1)
        }
        let v = across != nil && along != nil
            ? oriented(planes, channels: c, H: H, W: W, support: sup, oy: eoy, ox: eox, h: eh, w: ew, pixels: positions, along: along!)
            : smooth(planes, channels: c, H: H, W: W, support: sup, oy: eoy, ox: eox, h: eh, w: ew, pixels: positions)
        var x = [Double](repeating: 0, count: pixels.count * c), change = [Double](repeating: 0, count: pixels.count)
        for (i, p) in pixels.enumerated() {
            let q = (p / w + 1) * ew + p % w + 1, centre = slot[q]
            for ch in 0..<c { x[i * c + ch] = v[centre * c + ch] }
            func derivative(_ lo: Int, _ hi: Int, _ ch: Int) -> Double {
                switch (lo >= 0, hi >= 0) {
                case (true, true): return (v[hi * c + ch] - v[lo * c + ch]) / 2
                case (true, false): return v[centre * c + ch] - v[lo * c + ch]
                case (false, true): return v[hi * c + ch] - v[centre * c + ch]
                case (false, false): return 0
                }
            }
            let l = slot[q - 1], r = slot[q + 1], u = slot[q - ew], d = slot[q + ew]
            var g = 0.0
            for ch in 0..<c { let gx = derivative(l, r, ch), gy = derivative(u, d, ch); g += gx * gx + gy * gy }
            change[i] = g
        }
        return (x, pixels, change)
    }

    /// The block's structure tensor per channel (Σ gy², Σ gy·gx, Σ gx² for each; see `tensor`) of channels `channels` of `a`.
    func structureTensor(_ run: RunArrays, _ a: ZarrArray, _ b: RunArrays.Block, channels: [Int], mask: [Bool],
                         support: (UInt8) -> Bool) async throws -> [Double] {
        let (h, w) = run.extent(b)
        let reach = presmoothing.radius
        let (planes, sup, H, W, oy, ox) = try await window(run, a, b, channels: channels, support: support, reach: reach)
        return tensor(planes, channels: channels.count, H: H, W: W, support: sup, oy: oy, ox: ox, h: h, w: w, mask: mask)
    }

    /// Per channel, Σ gy², Σ gy·gx, Σ gx² (3 · c values) over the target's pixels under `mask` (h × w): gradients by
    /// central differences of the channels averaged isotropically at half the along σ within the support
    /// (`presmoothing`), where a pixel's four neighbours are in the target and supported (planes, window and target
    /// as `smooth`). Sums over blocks add up elementwise.
    func tensor(_ planes: [Double], channels c: Int, H: Int, W: Int, support: [Double], oy: Int, ox: Int,
                h: Int, w: Int, mask: [Bool]) -> [Double] {
        let pre = presmoothing
        let pixels = (0..<(h * w)).filter { support[($0 / w + oy) * W + $0 % w + ox] > 0 }
        var j = [Double](repeating: 0, count: 3 * c)
        guard !pixels.isEmpty else { return j }
        let f = pre.smooth(planes, channels: c, H: H, W: W, support: support, oy: oy, ox: ox, h: h, w: w, pixels: pixels)
        var at = [Int](repeating: -1, count: h * w)
        for (i, p) in pixels.enumerated() { at[p] = i }
        for p in pixels where mask[p] {
            let y = p / w, x = p % w
            guard y > 0, y < h - 1, x > 0, x < w - 1 else { continue }
            let l = at[p - 1], r = at[p + 1], u = at[p - w], d = at[p + w]
            guard l >= 0, r >= 0, u >= 0, d >= 0 else { continue }
            for ch in 0..<c {
                let gx = (f[r * c + ch] - f[l * c + ch]) / 2, gy = (f[d * c + ch] - f[u * c + ch]) / 2
                guard gx.isFinite, gy.isFinite else { continue }
                j[3 * ch] += gy * gy; j[3 * ch + 1] += gy * gx; j[3 * ch + 2] += gx * gx
            }
        }
        return j
    }

    /// The isotropic mean the structure tensor's gradients are taken from, at half the along σ: the cells and most of
    /// L4's barrels (~180 px apart) average out while the layers (100–350 px thick) still vary. Measured on the demo's
    /// slices (direction error, the cortex runs at ~90°): at the across σ (16 px) the slices read 95° and 105°
    /// (coherence 0.34 / 0.16) and the layer ARI was 0.442; at 48 px, 91° and 91° (0.64 / 0.45).
    var presmoothing: SpatialSmoothing { SpatialSmoothing(sigma: sigma / 2) }

    /// The unit vector (y, x) along the layers from per-channel structure tensors (`tensor`'s Σ gy², Σ gy·gx, Σ gx²
    /// per channel): perpendicular to the principal axis of their sum after each is scaled to unit trace, the
    /// direction in which the channels change most; and that sum's coherence (0: no preferred direction, 1: all
    /// change in one direction). Unit trace because the channels' scales are arbitrary: in the demo's third model one
    /// NMF factor that does not follow the layers carried 60–68% of the gradient energy, and the raw sum pointed 126°
    /// and 178° from x (coherence 0.08, 0.07) where the cortex's layers run at ~90°; with each channel voting once the
    /// slices read 96° and 96° (0.29, 0.19), and the two earlier models' 92–97° were unchanged. nil when nothing
    /// changes.
    static func layerDirection(_ perChannel: [Double]) -> (along: (y: Double, x: Double), coherence: Double)? {
        var (yy, yx, xx) = (0.0, 0.0, 0.0)
        let traces = (0..<(perChannel.count / 3)).map { perChannel[3 * $0] + perChannel[3 * $0 + 2] }
        // A channel that is constant but for rounding has no direction to give: it does not vote.
        let floor = 1e-9 * (traces.max() ?? 0)
        for (c, t) in traces.enumerated() {
            guard t > floor else { continue }
            yy += perChannel[3 * c] / t; yx += perChannel[3 * c + 1] / t; xx += perChannel[3 * c + 2] / t
        }
        guard yy + xx > 0 else { return nil }
        let theta = 0.5 * atan2(2 * yx, xx - yy)   // the principal axis, from +x towards +y
        let coherence = ((xx - yy) * (xx - yy) + 4 * yx * yx).squareRoot() / (xx + yy)
        return ((y: cos(theta), x: -sin(theta)), coherence)
    }
}
