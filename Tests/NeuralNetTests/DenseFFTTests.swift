import CKernels
import XCTest
@testable import NeuralNet

/// The FFT fc1 path (with its fused fc2) against the direct im2col + sgemm path of the same engine: labels identical,
/// latents within 1e-5 of their scale — tighter than the 1e-4 the onnxruntime test allows across libraries.
final class DenseFFTTests: XCTestCase {
    func testFFTMatchesDirectPathWithin1e5AndSameLabels() throws {
        let model = try AreaClassifier(parameters: AreaClassifier.randomParameters(seed: 5))
        let H = 72, W = 90   // small: the direct path costs 9.8 MFLOP per pixel
        var s: UInt64 = 11
        let plane = (0..<(H * W)).map { i -> UInt8 in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: (i % W) / 3 + (i / W) / 5 + Int(s >> 60))
        }
        let fft = DenseEvaluator(model: model, fc1: .fft), gemm = DenseEvaluator(model: model, fc1: .gemm)
        for (S, tile, parallel) in [(1, 37, 2), (2, 23, 1)] {   // odd tiles, corners, both strides that keep fc1 dilated
            let a = try fft.evaluate(plane: plane, height: H, width: W, rows: 0..<H, cols: 0..<W, stride: S, tile: tile, parallelTiles: parallel)
            let b = try gemm.evaluate(plane: plane, height: H, width: W, rows: 0..<H, cols: 0..<W, stride: S, tile: tile, parallelTiles: parallel)
            let scale = b.latents.map { abs($0) }.max()!
            let err = zip(a.latents, b.latents).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err / scale, 1e-5, "S=\(S) tile \(tile): latents differ by \(err) at scale \(scale)")
            let plane = a.height * a.width
            func labels(_ o: DenseEvaluator.Output) -> [Int] {
                (0..<plane).map { p in (0..<6).max { o.logits[$0 * plane + p] < o.logits[$1 * plane + p] }! }
            }
            XCTAssertEqual(labels(a), labels(b), "S=\(S) tile \(tile): labels")
        }
    }

    /// FFT16's 2-D transforms (the 4×4 split, the paired real rows) against a naive double-precision DFT, on both
    /// builds of the C kernels (AVX2+FMA where the CPU has it, and the baseline), through each gather (a tile; eight
    /// planes whole, cut short, and strided) and both spectrum layouts (re and im apart, interleaved).
    func testFFT16MatchesANaiveDFTOnBothKernelBuilds() {
        var seed: UInt64 = 3
        func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed) >> 40) / Float(1 << 23) }
        func dft(_ re: [Double], _ im: [Double]) -> ([Double], [Double]) {
            let n = re.count
            var r = [Double](repeating: 0, count: n), i = r
            for k in 0..<n { for t in 0..<n {
                let a = -2 * Double.pi * Double(k * t) / Double(n)
                r[k] += re[t] * cos(a) - im[t] * sin(a); i[k] += re[t] * sin(a) + im[t] * cos(a)
            } }
            return (r, i)
        }
        // Eight planes of 21×40; a block is rows < r and columns < c of (row, col · colStride), zeros beyond.
        let H = 21, W = 40, plane = H * W
        let src = (0..<(8 * plane)).map { _ in rnd() }
        func block(_ l: Int, _ rows: Int, _ cols: Int, _ cs: Int) -> [Double] {
            (0..<256).map { i in i / 16 < rows && i % 16 < cols ? Double(src[l * plane + (i / 16) * W + (i % 16) * cs]) : 0 }
        }
        func spectrum(_ x: [Double]) -> (re: [Double], im: [Double]) {   // naive: rows, then columns; bins u·9 + k
            var rows = (0..<16).map { r in dft(Array(x[(r * 16)..<(r * 16 + 16)]), [Double](repeating: 0, count: 16)) }
            for k in 0..<16 {
                let col = dft((0..<16).map { rows[$0].0[k] }, (0..<16).map { rows[$0].1[k] })
                for u in 0..<16 { rows[u].0[k] = col.0[u]; rows[u].1[k] = col.1[u] }
            }
            return ((0..<144).map { rows[$0 / 9].0[$0 % 9] }, (0..<144).map { rows[$0 / 9].1[$0 % 9] })
        }
        let native = bm_kernels_level()
        defer { _ = bm_kernels_select(native) }
        var results: [[Float]] = []
        for level in Set([native, 1]).sorted(by: >) {
            XCTAssertEqual(bm_kernels_select(level), level)
            var all: [Float] = []
            for (rows, cols, cs, interleaved) in [(16, 16, 1, false), (11, 13, 1, true), (16, 9, 2, false), (3, 16, 1, true)] {
                let what = "\(FFT16.kernelLevel) \(rows)×\(cols) colStride \(cs)"
                var re = [Float](repeating: .nan, count: 144 * 16), im = re
                bm_fft16_forward(src, plane, W, cs, Int32(rows), Int32(cols), &re, &im, 16, interleaved ? 1 : 0)
                for l in 0..<8 {
                    let e = spectrum(block(l, rows, cols, cs))
                    for b in 0..<144 {
                        let (r, i) = interleaved ? (re[b * 16 + 2 * l], re[b * 16 + 2 * l + 1]) : (re[b * 16 + l], im[b * 16 + l])
                        XCTAssertEqual(Double(r), e.re[b], accuracy: 1e-4, "\(what): Re F[\(b)] lane \(l)")
                        XCTAssertEqual(Double(i), e.im[b], accuracy: 1e-4, "\(what): Im F[\(b)] lane \(l)")
                    }
                }
                // And back: 256 × the block, on the first nr × nc (odd and even row counts: the last row unpaired).
                for (nr, nc) in [(rows, cols), (16, 16), (5, 7)] {
                    var y = [Float](repeating: .nan, count: 256 * 8)
                    bm_fft16_inverse(re, im, 16, interleaved ? 1 : 0, Int32(nr), Int32(nc), &y)
                    for l in 0..<8 {
                        let x = block(l, rows, cols, cs)
                        for p in 0..<nr { for q in 0..<nc {
                            XCTAssertEqual(Double(y[(p * 16 + q) * 8 + l] / 256), x[p * 16 + q], accuracy: 1e-5, "\(what) → \(nr)×\(nc) (\(p), \(q)) lane \(l)")
                        } }
                    }
                    all += y.filter { !$0.isNaN }
                }
                all += re + (interleaved ? [] : im)
            }
            // The tile form (kernelSpectra's and the unpooled gradient's) against the plane form of the same block.
            var tile = [V8](repeating: .zero, count: 256)
            for i in 0..<256 { tile[i] = V8((0..<8).map { Float(block($0, 16, 16, 1)[i]) }) }
            var tr = [V8](repeating: .zero, count: 144), ti = tr, pr = [Float](repeating: 0, count: 144 * 8), pi = pr
            tile.withUnsafeBufferPointer { t in tr.withUnsafeMutableBufferPointer { r in ti.withUnsafeMutableBufferPointer { i in
                FFT16.forward2D(t.baseAddress!, r.baseAddress!, i.baseAddress!)
            } } }
            bm_fft16_forward(src, plane, W, 1, 16, 16, &pr, &pi, 8, 0)
            XCTAssertEqual(tr.flatMap { v in (0..<8).map { v[$0] } }, pr, "\(FFT16.kernelLevel): tile form = plane form")
            results.append(all)
        }
        if results.count == 2 {   // the builds differ by FMA roundings only: within a few float ulps of the scale
            let scale = results[1].map { abs($0) }.max()!, err = zip(results[0], results[1]).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(err / scale, 1e-6, "AVX2+FMA and baseline kernels")
            XCTAssertNotEqual(results[0], [], "both builds ran")
        } else {
            print("note: this CPU has no AVX2+FMA; only the baseline kernels were tested")
        }
    }
}
