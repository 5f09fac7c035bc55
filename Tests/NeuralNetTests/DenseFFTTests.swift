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

    /// FFT16 (the 4×4 split, the paired real rows) against a naive double-precision DFT.
    func testFFT16MatchesANaiveDFT() {
        var seed: UInt64 = 3
        func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed) >> 40) / Float(1 << 23) }
        func dft(_ re: [Double], _ im: [Double], _ sign: Double) -> ([Double], [Double]) {
            let n = re.count
            var r = [Double](repeating: 0, count: n), i = r
            for k in 0..<n { for t in 0..<n {
                let a = sign * 2 * Double.pi * Double(k * t) / Double(n)
                r[k] += re[t] * cos(a) - im[t] * sin(a); i[k] += re[t] * sin(a) + im[t] * cos(a)
            } }
            return (r, i)
        }
        // 1-D, both directions, every lane its own signal.
        for inverse in [false, true] {
            var xr = (0..<16).map { _ in V8((0..<8).map { _ in rnd() }) }, xi = (0..<16).map { _ in V8((0..<8).map { _ in rnd() }) }
            let (r0, i0) = (xr, xi)
            xr.withUnsafeMutableBufferPointer { r in xi.withUnsafeMutableBufferPointer { i in
                FFT16.transform(r.baseAddress!, i.baseAddress!, stride: 1, r.baseAddress!, i.baseAddress!, stride: 1, inverse: inverse)
            } }
            for l in 0..<8 {
                let (er, ei) = dft(r0.map { Double($0[l]) }, i0.map { Double($0[l]) }, inverse ? 1 : -1)
                for k in 0..<16 {
                    XCTAssertEqual(Double(xr[k][l]), er[k], accuracy: 1e-5); XCTAssertEqual(Double(xi[k][l]), ei[k], accuracy: 1e-5)
                }
            }
        }
        // 2-D: a real 16×16 block → its half spectrum (naive: rows then columns), and back to 256 × the block.
        let x = (0..<256).map { _ in V8((0..<8).map { _ in rnd() }) }
        var fre = [V8](repeating: .zero, count: 256), fim = fre, y = fre
        var scratch = FFT16.Scratch()
        x.withUnsafeBufferPointer { xp in fre.withUnsafeMutableBufferPointer { r in fim.withUnsafeMutableBufferPointer { i in
            FFT16.forward2D(xp.baseAddress!, r.baseAddress!, i.baseAddress!, &scratch)
        } } }
        let lane = 5
        var rows = (0..<16).map { r in dft((0..<16).map { Double(x[r * 16 + $0][lane]) }, [Double](repeating: 0, count: 16), -1) }
        for k in 0..<16 {
            let col = dft((0..<16).map { rows[$0].0[k] }, (0..<16).map { rows[$0].1[k] }, -1)
            for u in 0..<16 { rows[u].0[k] = col.0[u]; rows[u].1[k] = col.1[u] }
        }
        for u in 0..<16 { for k in 0..<9 {
            XCTAssertEqual(Double(fre[u * 9 + k][lane]), rows[u].0[k], accuracy: 1e-4, "F[\(u), \(k)]")
            XCTAssertEqual(Double(fim[u * 9 + k][lane]), rows[u].1[k], accuracy: 1e-4, "F[\(u), \(k)]")
        } }
        for (nr, nc) in [(11, 11), (16, 16), (5, 7)] {   // odd and even row counts (the last row unpaired)
            var r = fre, i = fim
            r.withUnsafeMutableBufferPointer { rp in i.withUnsafeMutableBufferPointer { ip in y.withUnsafeMutableBufferPointer { yp in
                FFT16.inverse2D(rp.baseAddress!, ip.baseAddress!, rows: nr, cols: nc, yp.baseAddress!, &scratch)
            } } }
            for p in 0..<nr { for q in 0..<nc { for l in 0..<8 {
                XCTAssertEqual(y[p * 16 + q][l] / 256, x[p * 16 + q][l], accuracy: 1e-5, "\(nr)×\(nc) at (\(p), \(q)) lane \(l)")
            } } }
        }
    }
}
