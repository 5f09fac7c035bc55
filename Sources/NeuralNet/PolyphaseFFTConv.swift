import CKernels
import COpenBLAS
import Foundation

/// fc1 of the dense net — a 6×6 convolution of dilation D over 128 channels into 1024 — computed on the D×D
/// polyphase sub-grids (each an ordinary 6×6 convolution) by 16×16 FFT overlap-save: every 16×16 input block
/// yields 11×11 outputs, and per frequency bin the channel mixing is one complex matrix product
/// (cgemm3m, [128 blocks × 128] · [128 × 128-channel chunk]). Per output pixel that is ~1.0 MFLOP in the products instead of
/// 9.4 MFLOP for the direct convolution, plus the transforms (vectorised over eight channels at a time).
/// The transformed weights take 144 × 128 × 1024 complex floats (151 MB), computed once.
public final class PolyphaseFFTConv: Sendable {
    static let n = 16, valid = 11, bins = 144
    public let cin: Int, cout: Int
    let weightsF: [Float]    // [bin][cin][cout], complex interleaved, conjugated (correlation)
    let bias: [Float]
    /// Blocks transformed and multiplied together, and fc1's output channels per product. OpenBLAS packs the
    /// weights once per call, so 128 rows per product amortise it over 4× the rows of the 32 × 1024 products this
    /// replaced (the products took 0.81 of their time, `bench cnn --profile`); chunking the output channels keeps
    /// the scratch smaller than before.
    static let group = 128, chunk = 128
    /// Widest next layer the workspace has room for (fc2: 64).
    static let nextChannels = 64
    /// Bytes of the transformed weights.
    public static let weightBytes = bins * 128 * 1024 * 2 * 4
    /// Floats of `forward`'s workspace: a group's input spectra (128 channels) and product spectra (one chunk of
    /// output channels), that chunk's fc1 outputs and the next layer's outputs on the group's pixels.
    public static let scratchFloats = bins * group * (128 + chunk) * 2 + group * 121 * (chunk + nextChannels)

    /// Real FLOPs FFT16 executes for one 2-D transform of eight channels: forward, 8 complex row transforms (two
    /// real rows each) with their split and 9 column transforms; the inverse 9 column transforms and one row
    /// transform per pair of the `rows` output rows with its packing.
    static func transformFlops(rows: Int) -> Double {
        let t = FFT16.transformFlops
        return Double(8 * (rows == 16 ? 8 * (t + FFT16.splitFlops) + 9 * t : 9 * t + (rows + 1) / 2 * (t + FFT16.packFlops)))
    }

    public init(_ layer: ConvLayer) {
        precondition(layer.k == 6 && layer.cin % 8 == 0 && layer.cout % 8 == 0)
        cin = layer.cin; cout = layer.cout; bias = layer.bias
        var wf = [Float](repeating: 0, count: Self.bins * layer.cin * layer.cout * 2)
        let (ci, co) = (layer.cin, layer.cout)
        FFT16.kernelSpectra(layer) { c, o0, fre, fim in
            for b in 0..<Self.bins { for l in 0..<8 {
                let o = ((b * ci + c) * co + o0 + l) * 2
                wf[o] = fre[b][l]; wf[o + 1] = -fim[b][l]
            } }
        }
        weightsF = wf
    }

    /// out[next.cout, h−5D, w−5D] = next(ReLU(conv(input[cin, h, w]) + bias)) for a 1×1 layer `next` (fc2):
    /// fc1's 1024-channel output exists only for one group of FFT blocks and one chunk of `chunk` output channels
    /// at a time; fc2 accumulates over the chunks. `workspace` (grown to `scratchFloats` if smaller) holds the
    /// spectra and those partial outputs, so a caller that keeps it pays no allocation per call.
    public func forward(_ input: UnsafePointer<Float>, h: Int, w: Int, dilation D: Int, then next: ConvLayer,
                        out: UnsafeMutablePointer<Float>, workspace: inout [Float], profile p: EngineProfile? = nil) {
        precondition(next.k == 1 && next.cin == cout && next.cout <= Self.nextChannels)
        let H = h - 5 * D, W = w - 5 * D
        guard H > 0, W > 0 else { return }
        // (py, px, first output sub-row, first sub-col, rows, cols) of every 11×11 output block of every phase.
        var blocks: [(Int, Int, Int, Int, Int, Int)] = []
        for py in 0..<min(D, H) { for px in 0..<min(D, W) {
            let hp = (H - py + D - 1) / D, wp = (W - px + D - 1) / D
            for bi in stride(from: 0, to: hp, by: Self.valid) { for bj in stride(from: 0, to: wp, by: Self.valid) {
                blocks.append((py, px, bi, bj, min(Self.valid, hp - bi), min(Self.valid, wp - bj)))
            } }
        } }
        let G = Self.group, CO = Self.chunk
        if workspace.count < Self.scratchFloats {
            workspace = [Float](unsafeUninitializedCapacity: Self.scratchFloats) { _, n in n = Self.scratchFloats }
        }
        var y = [V8](repeating: .zero, count: 256)
        var alpha: (Float, Float) = (1, 0), beta: (Float, Float) = (0, 0)
        let plane = h * w, outPlane = H * W
        let maxPixels = G * Self.valid * Self.valid
        var where_ = [Int](repeating: 0, count: maxPixels)   // output offset of each group pixel
        p?.lap(.alloc)
        workspace.withUnsafeMutableBufferPointer { ws in
        let xf = ws.baseAddress!                          // [bin][block][cin] complex
        let yf = xf + Self.bins * G * cin * 2             // [bin][block][chunk channel] complex
        let hidden = yf + Self.bins * G * CO * 2          // [chunk channel][group pixel]
        let mixed = hidden + CO * maxPixels               // [next.cout][group pixel]
        for g0 in stride(from: 0, to: blocks.count, by: G) {
            p?.layer = .fc1
            let gb = Array(blocks[g0..<min(g0 + G, blocks.count)])
            // Forward transforms, eight input channels at a time, gathered from the phase's sub-grid (rows and
            // columns D apart; zeros beyond the input) into xf's interleaved complex layout.
            for (b, blk) in gb.enumerated() {
                let (py, px, bi, bj, _, _) = blk
                let y0 = py + D * bi, x0 = px + D * bj
                let rows = min(16, (h - y0 + D - 1) / D), cols = min(16, (w - x0 + D - 1) / D)
                for cg in 0..<(cin / 8) {
                    bm_fft16_forward(input + cg * 8 * plane + y0 * w + x0, plane, D * w, D, Int32(rows), Int32(cols),
                                     xf + (b * cin + cg * 8) * 2, nil, G * cin * 2, 1)
                }
            }
            p?.lap(.fftForward, flops: Double(gb.count * cin / 8) * Self.transformFlops(rows: 16))
            var first = 0   // the block's first group pixel
            for blk in gb {
                let (py, px, bi, bj, rows, cols) = blk
                for r in 0..<rows { for s in 0..<cols { where_[first + r * cols + s] = (py + D * (bi + r)) * W + px + D * (bj + s) } }
                first += rows * cols
            }
            let n = first
            for c0 in stride(from: 0, to: cout, by: CO) {
                p?.layer = .fc1
                // Channel mixing per frequency bin, for output channels c0..<c0+CO.
                weightsF.withUnsafeBufferPointer { Wt in
                    for k in 0..<Self.bins {
                        cblas_cgemm3m(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(gb.count), Int32(CO), Int32(cin), &alpha,
                                      xf + k * G * cin * 2, Int32(cin), Wt.baseAddress! + (k * cin * cout + c0) * 2, Int32(cout),
                                      &beta, yf + k * G * CO * 2, Int32(CO))
                    }
                }
                p?.lap(.fftProduct, flops: Double(Self.bins * 6 * gb.count * cin * CO))   // cgemm3m: three real products
                // Inverse transforms, eight output channels at a time, with bias and ReLU, into the group's pixels
                // (profiled as: the transforms with their bin gather, bias + ReLU + the scatter to pixel-major).
                let scale: Float = 1 / 256
                first = 0
                y.withUnsafeMutableBufferPointer { yb in bias.withUnsafeBufferPointer { bias in
                    let tile = floats(yb.baseAddress!)
                    for (b, blk) in gb.enumerated() {
                        let (_, _, _, _, rows, cols) = blk
                        for og in 0..<(CO / 8) {
                            bm_fft16_inverse(yf + (b * CO + og * 8) * 2, nil, G * CO * 2, 1, Int32(rows), Int32(cols), tile)
                            p?.lap(.fftInverse, flops: Self.transformFlops(rows: rows))
                            bm_tile_bias_relu(tile, Int32(rows), Int32(cols), scale, bias.baseAddress! + c0 + og * 8,
                                              hidden + (og * 8) * maxPixels + first, maxPixels, cols)
                            p?.lap(.bias, flops: Double(8 * 3 * rows * cols))
                        }
                        first += rows * cols
                    }
                } }
                // The next 1×1 layer on the group's pixels, accumulated over the chunks of fc1's channels.
                p?.layer = .fc2
                next.weight.withUnsafeBufferPointer { wt in
                    BLAS.gemm(m: next.cout, n: n, k: CO, a: wt.baseAddress! + c0, lda: cout, b: hidden, ldb: maxPixels,
                              c: mixed, ldc: maxPixels, accumulate: c0 > 0)
                }
                p?.lap(.gemm, flops: 2 * Double(next.cout * n * CO))
            }
            for c in 0..<next.cout {
                let bc = next.bias[c]
                let dst = out + c * outPlane
                for q in 0..<n { dst[where_[q]] = mixed[c * maxPixels + q] + bc }
            }
            p?.lap(.bias, flops: Double(next.cout * n))
        }
        }
    }
}
