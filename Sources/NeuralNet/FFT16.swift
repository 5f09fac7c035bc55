import CKernels
import Foundation

/// The 16×16 real 2-D FFTs of the polyphase FFT convolutions, eight independent channels at once (SIMD8 lanes),
/// forward e^{−2πi nk/16}, inverses unscaled. The transforms run in C (`Sources/CKernels`), built for AVX2+FMA and
/// for the baseline, picked at load: Swift's SIMD8 code on the baseline target ran at ~2 GFLOP/s.
///
/// One 16-point transform is a 4×4 Cooley–Tukey split written out in full (four 4-point DFTs, eight twiddle
/// products, four 4-point DFTs: 176 real flops per lane). The 2-D transforms use that their data are real: two
/// real rows go through one complex transform (forward: split by the spectrum's symmetry; inverse: two Hermitian
/// half-spectra packed as X₁ + i·X₂). A half spectrum is bins u·9 + k (k < 9) of re and im.
typealias V8 = SIMD8<Float>

@inline(__always) func floats(_ p: UnsafePointer<V8>) -> UnsafePointer<Float> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}
@inline(__always) func floats(_ p: UnsafeMutablePointer<V8>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}

enum FFT16 {
    /// Real flops per lane: one complex transform; splitting a forward pair of real rows (9 bins);
    /// packing an inverse pair of half-spectra (bins 1…7 and their mirrors).
    static let transformFlops = 4 * 16 + 8 * 6 + 4 * 16, splitFlops = 9 * 8, packFlops = 14 * 2

    /// The vector unit the transforms run on ("AVX2+FMA" or "baseline").
    static var kernelLevel: String { bm_kernels_level() == 2 ? "AVX2+FMA" : "baseline" }

    /// Real 16×16 block x[r·16 + s] → half spectrum F[u·9 + k].
    static func forward2D(_ x: UnsafePointer<V8>, _ fre: UnsafeMutablePointer<V8>, _ fim: UnsafeMutablePointer<V8>) {
        bm_fft16_forward(floats(x), 1, 16 * 8, 8, 16, 16, floats(fre), floats(fim), 8, 0)
    }

    /// Half spectrum F[u·9 + k] → real output rows 0..<rows, cols 0..<cols (unscaled: ×256), into y[r·16 + s].
    /// The imaginary parts of bins k = 0 and 8 are ignored (the output is the real part).
    static func inverse2D(_ fre: UnsafePointer<V8>, _ fim: UnsafePointer<V8>, rows: Int, cols: Int, _ y: UnsafeMutablePointer<V8>) {
        bm_fft16_inverse(floats(fre), floats(fim), 8, 0, Int32(rows), Int32(cols), floats(y))
    }

    /// The half spectra of a conv layer's k×k kernels (k ≤ 16) placed at the top-left of a zero 16×16 block, eight
    /// output channels (lanes) at a time: body(input channel, first of the eight output channels, re, im), 144 bins
    /// each. Conjugated, they turn the per-bin products into correlations (what a conv layer computes).
    static func kernelSpectra(_ layer: ConvLayer, _ body: (Int, Int, UnsafePointer<V8>, UnsafePointer<V8>) -> Void) {
        let (ci, co, k) = (layer.cin, layer.cout, layer.k)
        precondition(k <= 16 && co % 8 == 0)
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
                    forward2D(xp.baseAddress!, r.baseAddress!, m.baseAddress!)
                    body(c, og * 8, r.baseAddress!, m.baseAddress!)
                } } }
            }
        }
    }
}
