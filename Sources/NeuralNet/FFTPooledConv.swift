import CKernels

/// A conv → ReLU → 2×2 max pool stage (the layouts, results and argmax of `ConvLayer.forwardPooled`, and its
/// backward pass) by 16×16 FFT overlap-save on FFT16: a k×k valid correlation of a 16×16 input block gives
/// v = 17 − k outputs per side (conv2, 5×5: 12×12, so 5×5 blocks cover its 60×60 output exactly; v is even for odd
/// k, so a block's 2×2 pools never straddle blocks). Per frequency bin the channel mixing of a group of blocks is one
/// complex product [blocks × cin] · [cin × cout], run as one real matrix product on the block form
/// [Re X | Im X] · [[Re W, Im W], [−Im W, Re W]] (forward: `bm_bin_products`, ~2× OpenBLAS's sgemm at these sizes,
/// which packs for every small product; backward: `bm_conj_gradients` and `bm_conj_products` on the complex rows): the spectra stay in FFT16's layout (eight channels per SIMD lane
/// group, re and im apart), so neither side needs an interleaving pass. For conv2 per patch that is 14.7 MFLOP of
/// products and 3.7 of transforms instead of the 98 MFLOP of the banded sgemm.
///
/// The backward pass reuses the blocks: the input gradient is the full convolution of the output gradient with the
/// kernel (a block's 12×12 gradient and a 5×5 kernel fill a 16×16 block exactly, added into the overlapping input
/// blocks), the product with conj(W)ᵀ; the weight gradient is, per bin, Σ over blocks of
/// conj(X)·DY, accumulated in frequency over the whole batch and transformed back once.
public final class FFTPooledConv: Sendable {
    static let bins = 144
    public let layer: ConvLayer
    /// Conv outputs per block side.
    let valid: Int
    /// Per bin, the complex weights W[cin][cout] (the conjugated kernel spectra: correlation) as the real block
    /// matrix [[Re W, Im W], [−Im W, Re W]] (2·cin × 2·cout) in the forward product's layout (`bm_bin_products`):
    /// panels of 16 columns, each 2·cin × 16.
    let panels: [Float]
    /// Per bin, Wᵀ as complex rows (cout rows: Re W[·][o] then Im W[·][o]), for the input gradient DY · conj(W)ᵀ.
    let transposed: [Float]

    /// Layers the blocks fit: odd k (even v), channel counts in whole SIMD lane groups.
    public static func fits(_ layer: ConvLayer) -> Bool {
        layer.k % 2 == 1 && layer.k >= 3 && layer.k <= 15 && layer.cin % 8 == 0 && layer.cout % 8 == 0
    }

    /// Where the FFT form is used: kernels of 5×5 and larger (measured for conv2 by `bench cnn --profile` and
    /// `bench train --profile`). 3×3 layers stay banded: ~4× fewer FLOPs at best, and the block-form weight spectra
    /// grow as cin·cout (conv4's would take 19 MB against its 295 KB of weights).
    public static func pays(for layer: ConvLayer) -> Bool { fits(layer) && layer.k >= 5 }

    public init(_ layer: ConvLayer) {
        precondition(Self.fits(layer), "FFTPooledConv: k odd ≤ 15, cin and cout multiples of 8")
        self.layer = layer
        valid = 17 - layer.k
        let ci = layer.cin, co = layer.cout, n2 = 2 * co
        var w = [Float](repeating: 0, count: Self.bins * 4 * ci * co)
        FFT16.kernelSpectra(layer) { c, o0, fre, fim in
            for b in 0..<Self.bins { for l in 0..<8 {
                let wr = fre[b][l], wi = -fim[b][l], o = o0 + l, base = b * 4 * ci * co
                w[base + c * n2 + o] = wr; w[base + c * n2 + co + o] = wi
                w[base + (ci + c) * n2 + o] = -wi; w[base + (ci + c) * n2 + co + o] = wr
            } }
        }
        let K2 = 2 * ci
        transposed = (0..<(Self.bins * co * K2)).map { i in
            let b = i / (co * K2), o = (i % (co * K2)) / K2, c = i % K2
            return c < ci ? w[b * 4 * ci * co + c * n2 + o] : w[b * 4 * ci * co + (c - ci) * n2 + co + o]
        }
        panels = (0..<w.count).map { i in
            let b = i / (K2 * n2), r = i % (K2 * n2), j = r / (K2 * 16), kk = (r % (K2 * 16)) / 16, c = r % 16
            return w[b * K2 * n2 + kk * n2 + j * 16 + c]
        }
    }

    /// Blocks per scratch group (the M of each per-bin product): one padded-128 patch's conv2 is 25.
    public static let defaultGroup = 25

    /// Floats of `FFTConvScratch` for this layer's forward pass (spectra of `group` blocks in and out), and in
    /// training the weight-gradient spectra as well.
    public static func scratchFloats(cin: Int, cout: Int, group: Int = FFTPooledConv.defaultGroup, training: Bool) -> Int {
        bins * group * 2 * (cin + cout) + (training ? bins * 2 * cin * cout : 0)
    }

    /// The blocks of `batch` images: v×v conv outputs each, covering the 2·ph × 2·pw rows and columns the pool reads.
    struct Blocks {
        let perRow: Int, perImage: Int, v: Int
        init(_ g: PooledConvGeometry, valid v: Int) {
            self.v = v
            perRow = (2 * g.pw + v - 1) / v
            perImage = perRow * ((2 * g.ph + v - 1) / v)
        }
        /// (image, first conv row, first conv column) of block q.
        @inline(__always) func origin(_ q: Int) -> (Int, Int, Int) {
            let i = q % perImage
            return (q / perImage, (i / perRow) * v, (i % perRow) * v)
        }
    }

    /// Real flops of one forward 2-D transform of eight channels, and of an inverse with `rows` output rows.
    static let forwardFlops = PolyphaseFFTConv.transformFlops(rows: 16)

    /// Forward transforms of blocks q0..<q0+nb of x (padded layout) into spec[bin][block][2·cin] (Re of the cin
    /// channels, then Im), eight channels at a time, gathered from x's planes; zeros beyond the input plane.
    private func transformInput(_ x: UnsafePointer<Float>, _ g: PooledConvGeometry, _ blocks: Blocks, q0: Int, nb: Int,
                                spec: UnsafeMutablePointer<Float>, group G: Int) {
        let cin = layer.cin, K2 = 2 * cin
        for j in 0..<nb {
            let (img, y0, x0) = blocks.origin(q0 + j)
            let rows = max(0, min(16, g.hp2 - y0)), cols = max(0, min(16, g.wp2 - x0))
            for cg in 0..<(cin / 8) {
                let src = x + (img * cin + cg * 8) * g.inPlane + min(y0, g.hp2 - 1) * g.wp2 + x0
                let dst = spec + j * K2 + cg * 8
                bm_fft16_forward(src, g.inPlane, g.wp2, 1, Int32(rows), Int32(cols), dst, dst + cin, G * K2, 0)
            }
        }
    }

    /// pooled = maxpool₂(ReLU(conv(x) + bias)) for every image of the batch: the arguments, layouts and results of
    /// `ConvLayer.forwardPooled` (values within float rounding of it, argmax the first of equals).
    public func forwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                              out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>? = nil,
                              scratch s: FFTConvScratch, profile: EngineProfile? = nil) {
        let g = PooledConvGeometry(layer, h: h, w: w, padding: p, outPad: outPad)
        let blocks = Blocks(g, valid: valid), total = batch * blocks.perImage
        let cin = layer.cin, cout = layer.cout, K2 = 2 * cin, N2 = 2 * cout, G = min(s.group, total)
        let xs = s.input.reserve(Self.bins * G * K2), ys = s.output.reserve(Self.bins * G * N2)
        if outPad > 0 { out.update(repeating: 0, count: batch * cout * g.outPlane) }
        profile?.lap(.alloc)
        let scale: Float = 1.0 / 256
        panels.withUnsafeBufferPointer { wt in layer.bias.withUnsafeBufferPointer { bias in
            for q0 in stride(from: 0, to: total, by: G) {
                let nb = min(G, total - q0)
                transformInput(x, g, blocks, q0: q0, nb: nb, spec: xs, group: G)
                profile?.lap(.fftForward, flops: Double(nb * cin / 8) * Self.forwardFlops)
                bm_bin_products(Int32(Self.bins), Int32(nb), Int32(N2), Int32(K2), xs, K2, G * K2, wt.baseAddress!, K2 * N2,
                                ys, N2, G * N2)
                profile?.lap(.fftProduct, flops: 2 * Double(Self.bins * nb * K2 * N2))
                for j in 0..<nb {
                    let (img, y0, x0) = blocks.origin(q0 + j)
                    let rows = min(valid, 2 * g.ph - y0), cols = min(valid, 2 * g.pw - x0)
                    for og in 0..<(cout / 8) {
                        let spec = ys + j * N2 + og * 8
                        bm_fft16_inverse(spec, spec + cout, G * N2, 0, Int32(rows), Int32(cols), floats(s.tile))
                        profile?.lap(.fftInverse, flops: PolyphaseFFTConv.transformFlops(rows: rows))
                        // Pool, bias and ReLU (as forwardPooled: the max of the raw outputs, then the bias; the scale
                        // is a power of two, so scaling after the max changes nothing).
                        let first = g.outOffset(img, og * 8, y0 / 2) + x0 / 2
                        bm_pool_bias_relu(floats(s.tile), Int32(rows), Int32(cols), scale, bias.baseAddress! + og * 8,
                                          out + first, g.outPlane, g.outW, argmax.map { $0 + first })
                        profile?.lap(.pool, flops: Double(8 * 4 * (rows / 2) * (cols / 2)))
                    }
                }
            }
        } }
    }

    /// The backward pass of `forwardPooled`, with `ConvLayer.backwardPooled`'s arguments and layouts: dW += and
    /// db += the batch's gradients, and dx (when given; x's padded layout) overwritten with the input gradient.
    public func backwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                               dPooled: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                               dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                               scratch s: FFTConvScratch, profile: EngineProfile? = nil) {
        let g = PooledConvGeometry(layer, h: h, w: w, padding: p, outPad: outPad)
        let blocks = Blocks(g, valid: valid), total = batch * blocks.perImage
        let cin = layer.cin, cout = layer.cout, k = layer.k, K2 = 2 * cin, N2 = 2 * cout, G = min(s.group, total)
        let xs = s.input.reserve(Self.bins * G * K2), dys = s.output.reserve(Self.bins * G * N2)
        let dws = s.weightGradient.reserve(Self.bins * cin * N2)
        dws.update(repeating: 0, count: Self.bins * cin * N2)
        dx?.update(repeating: 0, count: batch * cin * g.inPlane)
        profile?.lap(.alloc)
        let scale: Float = 1.0 / 256
        transposed.withUnsafeBufferPointer { wt in
            for q0 in stride(from: 0, to: total, by: G) {
                let nb = min(G, total - q0)
                transformInput(x, g, blocks, q0: q0, nb: nb, spec: xs, group: G)
                // The conv output's gradient per block: each positive pooled output's gradient at the window
                // position its argmax recorded (the ReLU blocked the others), zeros elsewhere; then its spectrum.
                for j in 0..<nb {
                    let (img, y0, x0) = blocks.origin(q0 + j)
                    let rows = min(valid, 2 * g.ph - y0), cols = min(valid, 2 * g.pw - x0)
                    for og in 0..<(cout / 8) {
                        let first = g.outOffset(img, og * 8, y0 / 2) + x0 / 2, spec = dys + j * N2 + og * 8
                        bm_unpool_tile(dPooled + first, pooled + first, argmax + first, g.outPlane, g.outW,
                                       Int32(rows), Int32(cols), floats(s.tile), db + og * 8)
                        bm_fft16_forward(floats(s.tile), 1, 16 * 8, 8, Int32(rows), Int32(cols), spec, spec + cout, G * N2, 0)
                    }
                }
                profile?.lap(.fftForward, flops: Double(nb * (cin + cout) / 8) * Self.forwardFlops)
                // G += Σ over blocks of conj(X)ᵀ·DY per bin (the weight gradient's spectrum, conjugated below), then
                // DX = DY · conj(W)ᵀ into the input spectra (no longer needed).
                bm_conj_gradients(Int32(Self.bins), Int32(nb), Int32(cin), Int32(cout), xs, K2, G * K2, dys, N2, G * N2,
                                  dws, N2, cin * N2)
                if dx != nil {
                    bm_conj_products(Int32(Self.bins), Int32(nb), Int32(cout), Int32(cin), dys, N2, G * N2, wt.baseAddress!,
                                     K2, cout * K2, xs, K2, G * K2)
                }
                profile?.lap(.fftProduct, flops: 2 * Double(Self.bins * nb * K2 * N2) * (dx == nil ? 1 : 2))
                guard let dx else { continue }
                // Each block's 16×16 full convolution, added into x's gradient where it lies in the padded input.
                for j in 0..<nb {
                    let (img, y0, x0) = blocks.origin(q0 + j)
                    let rows = min(16, g.hp2 - y0), cols = min(16, g.wp2 - x0)
                    for cg in 0..<(cin / 8) {
                        let spec = xs + j * K2 + cg * 8
                        bm_fft16_inverse(spec, spec + cin, G * K2, 0, Int32(rows), Int32(cols), floats(s.tile))
                        let dst = dx + (img * cin + cg * 8) * g.inPlane + y0 * g.wp2 + x0
                        bm_tile_scatter_add(floats(s.tile), Int32(rows), Int32(cols), scale, dst, g.inPlane, g.wp2)
                        profile?.lap(.fftInverse, flops: PolyphaseFFTConv.transformFlops(rows: rows))
                    }
                }
            }
        }
        // dW from its spectrum: conj(G) with G = Σ conj(X)ᵀ·DY (rows c: Re G[c][·], then Im).
        for c in 0..<cin {
            for og in 0..<(cout / 8) {
                for b in 0..<Self.bins {
                    let m = UnsafeRawPointer(dws + (b * cin + c) * N2)
                    s.re[b] = m.loadUnaligned(fromByteOffset: 4 * og * 8, as: V8.self)
                    s.im[b] = -m.loadUnaligned(fromByteOffset: 4 * (cout + og * 8), as: V8.self)
                }
                FFT16.inverse2D(s.re, s.im, rows: k, cols: k, s.tile)
                bm_tile_scatter_add(floats(s.tile), Int32(k), Int32(k), scale, dW + (og * 8 * cin + c) * k * k, cin * k * k, k)
            }
        }
        profile?.lap(.fftInverse, flops: Double(cin * cout / 8) * PolyphaseFFTConv.transformFlops(rows: k))
    }
}

/// One thread's buffers for `FFTPooledConv`: the spectra of a group of blocks (reused by whichever layer runs),
/// the weight-gradient spectra in training, and FFT16's 16×16 working blocks.
public final class FFTConvScratch {
    /// Blocks (FFT) or tiles (Winograd, in whole rows of tiles) per group: the M of the per-bin products.
    public let group: Int
    let input = Scratch<Float>(), output = Scratch<Float>(), weightGradient = Scratch<Float>()
    /// A 16×16 block (256) and a half spectrum's re and im (144 each), eight lanes.
    let tile = UnsafeMutablePointer<V8>.allocate(capacity: 256)
    let re = UnsafeMutablePointer<V8>.allocate(capacity: 144), im = UnsafeMutablePointer<V8>.allocate(capacity: 144)

    public init(group: Int = FFTPooledConv.defaultGroup) { self.group = max(1, group) }
    deinit { tile.deallocate(); re.deallocate(); im.deallocate() }
}

/// A conv → ReLU → 2×2 max pool stage computed in a transform domain (`FFTPooledConv`'s 16×16 FFT blocks,
/// `WinogradPooledConv`'s 4×4 tiles), with `ConvLayer.forwardPooled` / `backwardPooled`'s arguments, layouts and
/// results, on one thread's `FFTConvScratch`.
public protocol TransformPooledConv: AnyObject, Sendable {
    var layer: ConvLayer { get }
    func forwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int,
                       out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>?,
                       scratch s: FFTConvScratch, profile: EngineProfile?)
    func backwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int,
                        dPooled: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                        dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                        scratch s: FFTConvScratch, profile: EngineProfile?)
}

extension FFTPooledConv: TransformPooledConv {}
