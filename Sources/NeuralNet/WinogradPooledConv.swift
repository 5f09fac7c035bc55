import CKernels

/// A 3×3 conv → ReLU → 2×2 max pool stage (the layouts, results and argmax of `ConvLayer.forwardPooled`, and its
/// backward pass) by Winograd's F(2×2, 3×3): each 2×2 pool window's conv outputs are one tile, Y = Aᵀ[(G W Gᵀ) ⊙
/// (Bᵀ d B)]A from the 4×4 input block d under it, so a tile's pool never straddles tiles. Per bin (16, all real)
/// the channel mixing of a group of tiles is one product [tiles × cin] · [cin × cout] (`bm_bin_products`, as the FFT
/// stage's). For conv3 per patch that is 12.8 MFLOP of products instead of the banded sgemm's 31 (conv4: 9.4 of 25);
/// the transforms are additions only, and the formula is exact, so the results are the convolution's up to rounding.
///
/// The backward pass is the exact adjoint of that computation: dM = A·dY·Aᵀ per tile from the pooled gradients,
/// dU_b = Σ over tiles of V_bᵀ·dM_b (sgemm, accumulated over the batch, then dW = Gᵀ dU G once),
/// dV_b = dM_b · U_bᵀ and dx += B dV Bᵀ into the overlapping 4×4 input blocks. The weights' transforms U are made
/// once per `Backprop.run` (per step), as the FFT stage's spectra.
///
/// Tiles run row by row (a row: one pooled row of one image, `pw` tiles), flattened over (image, pooled row), in
/// groups of whole rows of about `FFTConvScratch.group` tiles: the M of the per-bin products.
public final class WinogradPooledConv: TransformPooledConv {
    static let bins = 16
    public let layer: ConvLayer
    /// Per bin, U_b [cin × cout] in `bm_bin_products`' panels of 16 columns (forward).
    let panels: [Float]
    /// Per bin, U_bᵀ [cout × cin] in the same panels (the input gradient dM · Uᵀ).
    let transposedPanels: [Float]

    /// Layers the tiles fit: 3×3 kernels, channel counts in whole 16-column panels.
    public static func fits(_ layer: ConvLayer) -> Bool { layer.k == 3 && layer.cin % 16 == 0 && layer.cout % 16 == 0 }

    public init(_ layer: ConvLayer) {
        precondition(Self.fits(layer), "WinogradPooledConv: k = 3, cin and cout multiples of 16")
        self.layer = layer
        let ci = layer.cin, co = layer.cout, block = ci * co
        var u = [Float](repeating: 0, count: Self.bins * block)   // u[b][c][o]
        layer.weight.withUnsafeBufferPointer { w in
            for o in 0..<co { for c in 0..<ci {
                let t = Self.kernelTransform(w.baseAddress! + (o * ci + c) * 9)
                for b in 0..<Self.bins { u[b * block + c * co + o] = t[b] }
            } }
        }
        // Panel j of a [rows × cols] matrix: rows × 16, element (r, j·16 + q) at j·rows·16 + r·16 + q.
        func packed(rows: Int, cols: Int, _ at: (Int, Int, Int) -> Float) -> [Float] {
            (0..<(Self.bins * block)).map { i in
                let b = i / block, rest = i % block, j = rest / (rows * 16), r = (rest % (rows * 16)) / 16, q = rest % 16
                return at(b, r, j * 16 + q)
            }
        }
        panels = packed(rows: ci, cols: co) { b, c, o in u[b * block + c * co + o] }
        transposedPanels = packed(rows: co, cols: ci) { b, o, c in u[b * block + c * co + o] }
    }

    /// G·(a, b, c) with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1] (the factors of ½ are exact), and its adjoint Gᵀ·(…).
    @inline(__always) static func g3(_ a: Float, _ b: Float, _ c: Float) -> SIMD4<Float> {
        SIMD4(a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
    }
    @inline(__always) static func gt4(_ v: SIMD4<Float>) -> SIMD3<Float> {
        SIMD3(v[0] + 0.5 * (v[1] + v[2]), 0.5 * (v[1] - v[2]), 0.5 * (v[1] + v[2]) + v[3])
    }

    /// U = G w Gᵀ of one 3×3 kernel, bins u·4 + v.
    static func kernelTransform(_ w: UnsafePointer<Float>) -> SIMD16<Float> {
        let c0 = g3(w[0], w[3], w[6]), c1 = g3(w[1], w[4], w[7]), c2 = g3(w[2], w[5], w[8])   // G w, by column
        var u = SIMD16<Float>()
        for r in 0..<4 {
            let row = g3(c0[r], c1[r], c2[r])
            for v in 0..<4 { u[r * 4 + v] = row[v] }
        }
        return u
    }

    /// dw += Gᵀ dU G (the adjoint of `kernelTransform`) for dU's 16 bins at du[b·stride].
    static func addKernelGradient(_ du: UnsafePointer<Float>, stride: Int, into dw: UnsafeMutablePointer<Float>) {
        var t = (SIMD3<Float>(), SIMD3<Float>(), SIMD3<Float>(), SIMD3<Float>())   // dU G, by row of dU
        for r in 0..<4 {
            let v = gt4(SIMD4(du[(r * 4) * stride], du[(r * 4 + 1) * stride], du[(r * 4 + 2) * stride], du[(r * 4 + 3) * stride]))
            switch r { case 0: t.0 = v; case 1: t.1 = v; case 2: t.2 = v; default: t.3 = v }
        }
        for j in 0..<3 {
            let col = gt4(SIMD4(t.0[j], t.1[j], t.2[j], t.3[j]))
            for i in 0..<3 { dw[i * 3 + j] += col[i] }
        }
    }

    /// Rows of tiles per group and tiles per group (the per-bin products' M, and the bins' stride in tiles).
    private func grouping(_ g: PooledConvGeometry, _ s: FFTConvScratch) -> (rows: Int, tiles: Int) {
        let rows = max(1, s.group / max(1, g.pw))
        return (rows, rows * g.pw)
    }

    /// The input transforms of tile rows r0..<r0+nr (flattened over the batch) into v[bin][tile][cin].
    private func transformInput(_ x: UnsafePointer<Float>, _ g: PooledConvGeometry, r0: Int, nr: Int,
                                v: UnsafeMutablePointer<Float>, tiles T: Int) {
        let cin = layer.cin
        for i in 0..<nr {
            let img = (r0 + i) / g.ph, py = (r0 + i) % g.ph
            for cg in 0..<(cin / 8) {
                bm_wino_input(x + (img * cin + cg * 8) * g.inPlane + 2 * py * g.wp2, g.inPlane, g.wp2, Int32(g.pw),
                              v + i * g.pw * cin + cg * 8, T * cin, cin)
            }
        }
    }

    public func forwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                              out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>? = nil,
                              scratch s: FFTConvScratch, profile: EngineProfile? = nil) {
        let g = PooledConvGeometry(layer, h: h, w: w, padding: p, outPad: outPad)
        let cin = layer.cin, cout = layer.cout, rowsTotal = batch * g.ph
        let (R, T) = grouping(g, s)
        let vs = s.input.reserve(Self.bins * T * cin), ms = s.output.reserve(Self.bins * T * cout)
        if outPad > 0 { out.update(repeating: 0, count: batch * cout * g.outPlane) }
        profile?.lap(.alloc)
        panels.withUnsafeBufferPointer { u in layer.bias.withUnsafeBufferPointer { bias in
            for r0 in stride(from: 0, to: rowsTotal, by: R) {
                let nr = min(R, rowsTotal - r0), nt = nr * g.pw
                transformInput(x, g, r0: r0, nr: nr, v: vs, tiles: T)
                profile?.lap(.fftForward, flops: Double(nt * cin * 64))
                bm_bin_products(Int32(Self.bins), Int32(nt), Int32(cout), Int32(cin), vs, cin, T * cin, u.baseAddress!, cin * cout,
                                ms, cout, T * cout)
                profile?.lap(.fftProduct, flops: 2 * Double(Self.bins * nt * cin * cout))
                for i in 0..<nr {
                    let img = (r0 + i) / g.ph, py = (r0 + i) % g.ph
                    for og in 0..<(cout / 8) {
                        let first = g.outOffset(img, og * 8, py)
                        bm_wino_output_pool(ms + i * g.pw * cout + og * 8, T * cout, cout, Int32(g.pw), bias.baseAddress! + og * 8,
                                            out + first, g.outPlane, argmax.map { $0 + first })
                    }
                }
                profile?.lap(.fftInverse, flops: Double(nt * cout * 32))
            }
        } }
    }

    public func backwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                               dPooled: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                               dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                               scratch s: FFTConvScratch, profile: EngineProfile? = nil) {
        let g = PooledConvGeometry(layer, h: h, w: w, padding: p, outPad: outPad)
        let cin = layer.cin, cout = layer.cout, rowsTotal = batch * g.ph, block = cin * cout
        let (R, T) = grouping(g, s)
        let vs = s.input.reserve(Self.bins * T * cin), dms = s.output.reserve(Self.bins * T * cout)
        let dus = s.weightGradient.reserve(Self.bins * block)
        dus.update(repeating: 0, count: Self.bins * block)
        dx?.update(repeating: 0, count: batch * cin * g.inPlane)
        profile?.lap(.alloc)
        transposedPanels.withUnsafeBufferPointer { ut in
            for r0 in stride(from: 0, to: rowsTotal, by: R) {
                let nr = min(R, rowsTotal - r0), nt = nr * g.pw
                transformInput(x, g, r0: r0, nr: nr, v: vs, tiles: T)
                for i in 0..<nr {
                    let img = (r0 + i) / g.ph, py = (r0 + i) % g.ph
                    for og in 0..<(cout / 8) {
                        let first = g.outOffset(img, og * 8, py)
                        bm_wino_unpool(dPooled + first, pooled + first, argmax + first, g.outPlane, Int32(g.pw),
                                       dms + i * g.pw * cout + og * 8, T * cout, cout, db + og * 8)
                    }
                }
                profile?.lap(.fftForward, flops: Double(nt * (cin * 64 + cout * 24)))
                // dU += Vᵀ·dM per bin, then dV = dM·Uᵀ into V's buffer (no longer needed).
                for b in 0..<Self.bins {   // (sgemm matches a C kernel here: the sum over tiles is its long side)
                    BLAS.gemm(m: cin, n: cout, k: nt, a: vs + b * T * cin, lda: cin, b: dms + b * T * cout, ldb: cout,
                              c: dus + b * block, ldc: cout, transA: true, accumulate: true)
                }
                if dx != nil {
                    bm_bin_products(Int32(Self.bins), Int32(nt), Int32(cin), Int32(cout), dms, cout, T * cout, ut.baseAddress!,
                                    block, vs, cin, T * cin)
                }
                profile?.lap(.fftProduct, flops: 2 * Double(Self.bins * nt * block) * (dx == nil ? 1 : 2))
                guard let dx else { continue }
                for i in 0..<nr {
                    let img = (r0 + i) / g.ph, py = (r0 + i) % g.ph
                    for cg in 0..<(cin / 8) {
                        bm_wino_input_grad(vs + i * g.pw * cin + cg * 8, T * cin, cin, Int32(g.pw),
                                           dx + (img * cin + cg * 8) * g.inPlane + 2 * py * g.wp2, g.inPlane, g.wp2)
                    }
                }
                profile?.lap(.fftInverse, flops: Double(nt * cin * 64))
            }
        }
        for o in 0..<cout { for c in 0..<cin {
            Self.addKernelGradient(dus + c * cout + o, stride: block, into: dW + (o * cin + c) * 9)
        } }
        profile?.lap(.fftInverse, flops: Double(block * 64))
    }
}
