import Foundation

/// Complex FFTs of length 16 on eight independent signals at once (SIMD8 lanes = eight channels), and the 16×16 real
/// 2-D transforms built from them, for the polyphase FFT convolution. Forward uses e^{−2πi nk/16}; inverses are
/// unscaled.
///
/// One 16-point transform is a 4×4 Cooley–Tukey split written out in full (four 4-point DFTs, eight twiddle
/// products, four 4-point DFTs: 176 real flops per lane instead of the 320 of the radix-2 loop it replaced, and no
/// table lookups). The 2-D transforms use that their data are real: two real rows go through one complex transform
/// (forward: split by the spectrum's symmetry; inverse: two Hermitian half-spectra packed as X₁ + i·X₂).
typealias V8 = SIMD8<Float>

enum FFT16 {
    /// A complex value per lane.
    struct C: Sendable {
        var r: V8, i: V8
        @inline(__always) init(_ r: V8, _ i: V8) { self.r = r; self.i = i }
        @inline(__always) static func + (a: C, b: C) -> C { C(a.r + b.r, a.i + b.i) }
        @inline(__always) static func - (a: C, b: C) -> C { C(a.r - b.r, a.i - b.i) }
    }

    static let c1: Float = 0.923_879_532_511_286_7   // cos(π/8)
    static let s1: Float = 0.382_683_432_365_089_8   // sin(π/8)
    static let r2: Float = 0.707_106_781_186_547_6   // cos(π/4)

    /// × (−i) forward, × i inverse.
    @inline(__always) static func rotate(_ a: C, _ inverse: Bool) -> C { inverse ? C(-a.i, a.r) : C(a.i, -a.r) }

    /// × e^{∓2πi m/16} (− forward) for m in 1…9, m ≠ 4, 8.
    @inline(__always) static func twiddle(_ a: C, _ m: Int, _ inverse: Bool) -> C {
        let (c, s): (Float, Float)
        switch m {
        case 1: (c, s) = (c1, s1)
        case 2: (c, s) = (r2, r2)
        case 3: (c, s) = (s1, c1)
        case 6: (c, s) = (-r2, r2)
        default: (c, s) = (-c1, -s1)   // 9
        }
        let sn = inverse ? s : -s
        return C(a.r * c - a.i * sn, a.r * sn + a.i * c)
    }

    @inline(__always) static func dft4(_ x0: C, _ x1: C, _ x2: C, _ x3: C, _ inverse: Bool) -> (C, C, C, C) {
        let s02 = x0 + x2, d02 = x0 - x2, s13 = x1 + x3, j = rotate(x1 - x3, inverse)
        return (s02 + s13, d02 + j, s02 - s13, d02 - j)
    }

    /// y[k·os] = Σₙ x[n·s] e^{∓2πi nk/16}. Reads every input before it writes, so x and y may be the same.
    @inline(__always)
    static func transform(_ xr: UnsafePointer<V8>, _ xi: UnsafePointer<V8>, stride s: Int,
                          _ yr: UnsafeMutablePointer<V8>, _ yi: UnsafeMutablePointer<V8>, stride os: Int, inverse: Bool) {
        @inline(__always) func x(_ n: Int) -> C { C(xr[n * s], xi[n * s]) }
        // n = 4·n1 + n2: a 4-point DFT over n1 for each n2, the twiddles e^{∓2πi n2·k1/16}, a 4-point DFT over n2.
        let a0 = dft4(x(0), x(4), x(8), x(12), inverse)
        var a1 = dft4(x(1), x(5), x(9), x(13), inverse)
        var a2 = dft4(x(2), x(6), x(10), x(14), inverse)
        var a3 = dft4(x(3), x(7), x(11), x(15), inverse)
        a1 = (a1.0, twiddle(a1.1, 1, inverse), twiddle(a1.2, 2, inverse), twiddle(a1.3, 3, inverse))
        a2 = (a2.0, twiddle(a2.1, 2, inverse), rotate(a2.2, inverse), twiddle(a2.3, 6, inverse))
        a3 = (a3.0, twiddle(a3.1, 3, inverse), twiddle(a3.2, 6, inverse), twiddle(a3.3, 9, inverse))
        @inline(__always) func out(_ k1: Int, _ y: (C, C, C, C)) {
            yr[k1 * os] = y.0.r; yi[k1 * os] = y.0.i
            yr[(k1 + 4) * os] = y.1.r; yi[(k1 + 4) * os] = y.1.i
            yr[(k1 + 8) * os] = y.2.r; yi[(k1 + 8) * os] = y.2.i
            yr[(k1 + 12) * os] = y.3.r; yi[(k1 + 12) * os] = y.3.i
        }
        out(0, dft4(a0.0, a1.0, a2.0, a3.0, inverse))
        out(1, dft4(a0.1, a1.1, a2.1, a3.1, inverse))
        out(2, dft4(a0.2, a1.2, a2.2, a3.2, inverse))
        out(3, dft4(a0.3, a1.3, a2.3, a3.3, inverse))
    }

    /// Real flops per lane: one complex transform; splitting a forward pair of real rows (9 bins);
    /// packing an inverse pair of half-spectra (bins 1…7 and their mirrors).
    static let transformFlops = 4 * 16 + 8 * 6 + 4 * 16, splitFlops = 9 * 8, packFlops = 14 * 2

    /// Scratch for the 2-D transforms: one complex 16-line.
    struct Scratch {
        var lr = [V8](repeating: .zero, count: 16), li = [V8](repeating: .zero, count: 16)
    }

    /// Real 16×16 input x[r·16 + s] → half spectrum F[u·9 + k] (k < 9), as separate re/im.
    static func forward2D(_ x: UnsafePointer<V8>, _ fre: UnsafeMutablePointer<V8>, _ fim: UnsafeMutablePointer<V8>, _ w: inout Scratch) {
        w.lr.withUnsafeMutableBufferPointer { lr in w.li.withUnsafeMutableBufferPointer { li in
            let LR = lr.baseAddress!, LI = li.baseAddress!
            // Rows 2p and 2p+1 as z = a + i·b: Z = A + i·B with A, B Hermitian, so A[k] = (Z[k] + conj Z[−k]) / 2,
            // B[k] = (Z[k] − conj Z[−k]) / 2i. Bins 0…8 of each go to fre/fim[r·9 + k].
            for p in 0..<8 {
                transform(x + 32 * p, x + 32 * p + 16, stride: 1, LR, LI, stride: 1, inverse: false)
                for k in 0...8 {
                    let m = (16 - k) & 15
                    let zr = LR[k], zi = LI[k], mr = LR[m], mi = LI[m]
                    fre[2 * p * 9 + k] = (zr + mr) * 0.5; fim[2 * p * 9 + k] = (zi - mi) * 0.5
                    fre[(2 * p + 1) * 9 + k] = (zi + mi) * 0.5; fim[(2 * p + 1) * 9 + k] = (mr - zr) * 0.5
                }
            }
            // Columns, in place.
            for k in 0..<9 {
                transform(fre + k, fim + k, stride: 9, fre + k, fim + k, stride: 9, inverse: false)
            }
        } }
    }

    /// Half spectrum F[u·9 + k] → real output rows 0..<rows, cols 0..<cols (unscaled: ×256), into y[r·16 + s].
    /// Overwrites F. The imaginary parts of bins k = 0 and 8 are ignored (the output is the real part).
    static func inverse2D(_ fre: UnsafeMutablePointer<V8>, _ fim: UnsafeMutablePointer<V8>, rows: Int, cols: Int,
                          _ y: UnsafeMutablePointer<V8>, _ w: inout Scratch) {
        w.lr.withUnsafeMutableBufferPointer { lr in w.li.withUnsafeMutableBufferPointer { li in
            let LR = lr.baseAddress!, LI = li.baseAddress!
            for k in 0..<9 {
                transform(fre + k, fim + k, stride: 9, fre + k, fim + k, stride: 9, inverse: true)
            }
            // Rows r and r+1 (each the half spectrum of a real row) as Z = X₁ + i·X₂ over all 16 bins: its inverse
            // is x₁ + i·x₂.
            var r = 0
            while r < rows {
                let a = r * 9, b = r + 1 < rows ? (r + 1) * 9 : -1
                for k in 0...8 {
                    let x1r = fre[a + k], x1i = k == 0 || k == 8 ? V8.zero : fim[a + k]
                    let x2r = b < 0 ? V8.zero : fre[b + k], x2i = b < 0 || k == 0 || k == 8 ? V8.zero : fim[b + k]
                    LR[k] = x1r - x2i; LI[k] = x1i + x2r
                    if k > 0 && k < 8 { LR[16 - k] = x1r + x2i; LI[16 - k] = x2r - x1i }
                }
                transform(LR, LI, stride: 1, LR, LI, stride: 1, inverse: true)
                for s in 0..<cols { y[r * 16 + s] = LR[s] }
                if b >= 0 { for s in 0..<cols { y[(r + 1) * 16 + s] = LI[s] } }
                r += 2
            }
        } }
    }

    /// The half spectra of a conv layer's k×k kernels (k ≤ 16) placed at the top-left of a zero 16×16 block, eight
    /// output channels (lanes) at a time: body(input channel, first of the eight output channels, re, im), 144 bins
    /// each. Conjugated, they turn the per-bin products into correlations (what a conv layer computes).
    static func kernelSpectra(_ layer: ConvLayer, _ body: (Int, Int, UnsafePointer<V8>, UnsafePointer<V8>) -> Void) {
        let (ci, co, k) = (layer.cin, layer.cout, layer.k)
        precondition(k <= 16 && co % 8 == 0)
        var scratch = Scratch()
        var x = [V8](repeating: .zero, count: 256), fre = [V8](repeating: .zero, count: 144), fim = fre
        for c in 0..<ci {
            for og in 0..<(co / 8) {
                for i in 0..<256 { x[i] = .zero }
                for ky in 0..<k { for kx in 0..<k {
                    var v = V8.zero
                    for l in 0..<8 { v[l] = layer.weight[((og * 8 + l) * ci + c) * k * k + ky * k + kx] }
                    x[ky * 16 + kx] = v
                } }
                x.withUnsafeBufferPointer { xp in fre.withUnsafeMutableBufferPointer { r in fim.withUnsafeMutableBufferPointer { m in
                    forward2D(xp.baseAddress!, r.baseAddress!, m.baseAddress!, &scratch)
                    body(c, og * 8, r.baseAddress!, m.baseAddress!)
                } } }
            }
        }
    }
}
