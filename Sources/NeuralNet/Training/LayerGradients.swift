/// Backward passes of the layer primitives (`ConvLayer`, `MaxPool`), image by image. Same layouts as the forward
/// passes: one image in CHW, weights [cout, cin·k·k]. Training runs the banded batch kernels of BatchedConv.swift;
/// these plain per-image definitions are what TrainingTests checks against finite differences and BatchedConvTests
/// checks those kernels against.
extension ConvLayer {
    /// Pre-activation forward: y[cout, ho·wo] = W·im2col(x) + b, using `col` (resized
    /// as needed) for the whole image's im2col (training images are small; the dense engine bands instead).
    func forwardWhole(_ x: UnsafePointer<Float>, h: Int, w: Int, dilation d: Int, padding p: Int,
                      weight wp: UnsafePointer<Float>, bias bp: UnsafePointer<Float>,
                      y: UnsafeMutablePointer<Float>, col: inout [Float]) {
        let (ho, wo) = outputSize(h, w, dilation: d, padding: p)
        let K = cin * k * k, plane = ho * wo
        if col.count < K * plane { col = .init(repeating: 0, count: K * plane) }
        col.withUnsafeMutableBufferPointer { c in
            im2col(x, h: h, w: w, y0: 0, rows: ho, wo: wo, dilation: d, padding: p, col: c.baseAddress!)
            BLAS.gemm(m: cout, n: plane, k: K, a: wp, lda: K, b: c.baseAddress!, ldb: plane, c: y, ldc: plane)
        }
        for o in 0..<cout {
            let b = bp[o], row = y + o * plane
            for i in 0..<plane { row[i] += b }
        }
    }

    /// Given dL/dy [cout, ho·wo] for input x [cin, h, w]: dW += dy·im2col(x)ᵀ, db += Σ dy, and, when `dx` is given,
    /// dx = col2im(Wᵀ·dy) (overwritten). `col` and `dcol` are scratch.
    func backward(_ x: UnsafePointer<Float>, h: Int, w: Int, dilation d: Int, padding p: Int,
                  weight wp: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                  col: inout [Float], dcol: inout [Float]) {
        let (ho, wo) = outputSize(h, w, dilation: d, padding: p)
        let K = cin * k * k, plane = ho * wo
        if col.count < K * plane { col = .init(repeating: 0, count: K * plane) }
        col.withUnsafeMutableBufferPointer { c in
            im2col(x, h: h, w: w, y0: 0, rows: ho, wo: wo, dilation: d, padding: p, col: c.baseAddress!)
            BLAS.gemm(m: cout, n: K, k: plane, a: dy, lda: plane, b: c.baseAddress!, ldb: plane, c: dW, ldc: K,
                      transB: true, accumulate: true)
        }
        for o in 0..<cout {
            var s: Float = 0
            let row = dy + o * plane
            for i in 0..<plane { s += row[i] }
            db[o] += s
        }
        guard let dx else { return }
        if dcol.count < K * plane { dcol = .init(repeating: 0, count: K * plane) }
        dcol.withUnsafeMutableBufferPointer { dc in
            BLAS.gemm(m: K, n: plane, k: cout, a: wp, lda: K, b: dy, ldb: plane, c: dc.baseAddress!, ldc: plane, transA: true)
            col2im(dc.baseAddress!, h: h, w: w, ho: ho, wo: wo, dilation: d, padding: p, dx: dx)
        }
    }

    /// The adjoint of `im2col`: dx[c, iy, ix] = Σ over the (ky, kx, oy, ox) that read it of dcol. Overwrites dx.
    func col2im(_ dcol: UnsafePointer<Float>, h: Int, w: Int, ho: Int, wo: Int, dilation d: Int, padding p: Int,
                dx: UnsafeMutablePointer<Float>) {
        dx.update(repeating: 0, count: cin * h * w)
        let n = ho * wo
        var r = 0
        for c in 0..<cin {
            let dst = dx + c * h * w
            for ky in 0..<k {
                for kx in 0..<k {
                    let src = dcol + r * n
                    let dxo = kx * d - p
                    let xa = max(0, -dxo), xb = min(wo, w - dxo)
                    if xa < xb {
                        for oy in 0..<ho {
                            let iy = oy + ky * d - p
                            guard iy >= 0 && iy < h else { continue }
                            let s = src + oy * wo, t = dst + iy * w + dxo
                            for ox in xa..<xb { t[ox] += s[ox] }
                        }
                    }
                    r += 1
                }
            }
        }
    }
}

extension MaxPool {
    /// ReLU → 2×2 max pool (stride s, dilation d), recording for every output the flat index (within its channel
    /// plane) of the input it took. Ties go to the first of (r0, c0), (r0, c0+d), (r1, c0), (r1, c0+d), as PyTorch's
    /// CPU kernel does.
    static func forwardRecording(_ input: UnsafePointer<Float>, channels: Int, h: Int, w: Int, stride s: Int, dilation d: Int,
                                 out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        let (ho, wo) = outputSize(h, w, stride: s, dilation: d)
        for c in 0..<channels {
            let src = input + c * h * w, dst = out + c * ho * wo, arg = argmax + c * ho * wo
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let i0 = oy * s * w + ox * s
                    let i1 = i0 + d, i2 = i0 + d * w, i3 = i2 + d
                    var best = i0, m = src[i0]
                    if src[i1] > m { best = i1; m = src[i1] }
                    if src[i2] > m { best = i2; m = src[i2] }
                    if src[i3] > m { best = i3; m = src[i3] }
                    dst[oy * wo + ox] = max(m, 0)
                    arg[oy * wo + ox] = Int32(best)
                }
            }
        }
    }

    /// dL/d(pre-ReLU input) from dL/d(pooled output): each output's gradient goes to the input it took, if that input
    /// was positive (else the ReLU blocked it). Overwrites `dInput` [channels, h, w].
    static func backward(_ dOut: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
                         channels: Int, h: Int, w: Int, outputs: Int, dInput: UnsafeMutablePointer<Float>) {
        dInput.update(repeating: 0, count: channels * h * w)
        for c in 0..<channels {
            let g = dOut + c * outputs, p = pooled + c * outputs, a = argmax + c * outputs, dst = dInput + c * h * w
            for i in 0..<outputs where p[i] > 0 { dst[Int(a[i])] += g[i] }
        }
    }
}
