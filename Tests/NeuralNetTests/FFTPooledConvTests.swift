import CKernels
import XCTest
@testable import NeuralNet

/// The transform-domain conv → ReLU → pool stages (FFT blocks, Winograd tiles) against the banded im2col + sgemm
/// stage (`BatchedConvTests` checks that one against the per-image path): pooled outputs, argmax, dW, db and dx, on
/// sizes where the blocks do not tile the output (partial last blocks, tiles running past the input's edge, odd conv
/// outputs whose last row and column no pool reads), kernels 3, 5 and 7, odd batches whose groups straddle images,
/// with and without padding around the input and the output; on the C kernels the CPU runs (AVX2+FMA here) and on
/// their baseline build.
final class FFTPooledConvTests: XCTestCase {
    func randoms(_ n: Int, seed: UInt64) -> [Float] {
        var r = SeededRandom(seed: seed)
        return (0..<n).map { _ in 2 * r.nextFloat() - 1 }
    }

    /// (cin, cout, k, padding, input side): conv2's own geometry (62 + 2 → 5×5 whole blocks), an odd side whose
    /// last blocks are partial, a 3×3 whose second block runs past the input, a 7×7 with padding.
    static let cases = [(16, 32, 5, 1, 62), (8, 16, 5, 0, 27), (8, 8, 3, 0, 20), (16, 8, 7, 1, 23)]

    /// Winograd's: conv3's own geometry (30 → 28 → 14), an odd conv output (17 → 15: a row and column no pool reads)
    /// with padding, conv4's channels on a small side, and a row of 16 pools (the input transform's chunked path,
    /// whose chunks' input blocks overlap at the seams).
    static let winogradCases = [(32, 64, 3, 0, 30), (16, 32, 3, 1, 15), (64, 128, 3, 0, 8), (16, 16, 3, 0, 34)]

    /// A NaN weight reaches the pooled outputs of its channel on both kernel builds (a diverged network's NaN must get
    /// to the loss, where training stops on it; a maxnum ReLU turned it into zeros), as the banded stage's does.
    func testANaNWeightReachesThePooledOutput() {
        let cin = 16, cout = 16, side = 20
        var weight = randoms(cout * cin * 9, seed: 1)
        for i in 0..<(cin * 9) { weight[i] = .nan }   // output channel 0
        let layer = ConvLayer(weight: weight, bias: randoms(cout, seed: 2), cin: cin, cout: cout, k: 3)
        let x = randoms(cin * side * side, seed: 3), plane = 81   // 18 → 9×9 pools
        onBothKernelBuilds { _ in
            for (name, stage) in [("FFT", FFTPooledConv(layer) as TransformPooledConv), ("Winograd", WinogradPooledConv(layer))] {
                var out = [Float](repeating: 0, count: cout * plane)
                stage.forwardPooled(x, batch: 1, h: side, w: side, padding: 0, outPad: 0, out: &out, argmax: nil,
                                    scratch: FFTConvScratch(group: 7), profile: nil)
                XCTAssertTrue(out[0..<plane].allSatisfy { $0.isNaN }, "\(name), kernels \(FFT16.kernelLevel): channel 0")
                XCTAssertFalse(out[plane...].contains { $0.isNaN }, "\(name): the other channels")
            }
        }
        var ref = [Float](repeating: 0, count: cout * plane), arg = [UInt8](repeating: 0, count: cout * plane)
        layer.forwardPooled(x, batch: 1, h: side, w: side, padding: 0, outPad: 0, out: &ref, argmax: &arg, scratch: ConvBandScratch())
        XCTAssertTrue(ref[0..<plane].allSatisfy { $0.isNaN }, "banded")
    }

    func testFFTStageMatchesTheBandedStage() {
        onBothKernelBuilds { native in
            // Every group size on the CPU's kernels, one on the other build.
            checkAgainstBandedStage(Self.cases, FFTPooledConv.init, groups: native ? [1, 7, 1000] : [7], "kernels \(FFT16.kernelLevel)")
        }
    }

    func testWinogradStageMatchesTheBandedStage() {
        onBothKernelBuilds { native in
            // Groups of one row of tiles, of rows that end inside an image, and of the whole batch.
            checkAgainstBandedStage(Self.winogradCases, WinogradPooledConv.init, groups: native ? [1, 40, 10_000] : [40],
                                    "Winograd, kernels \(FFT16.kernelLevel)")
        }
    }

    func onBothKernelBuilds(_ body: (_ native: Bool) -> Void) {
        let native = bm_kernels_level()
        defer { _ = bm_kernels_select(native) }
        for level in Set([native, 1]).sorted(by: >) {
            XCTAssertEqual(bm_kernels_select(level), level)
            body(level == native)
        }
    }

    func checkAgainstBandedStage(_ cases: [(Int, Int, Int, Int, Int)], _ make: (ConvLayer) -> TransformPooledConv,
                                 groups: [Int], _ kernels: String) {
        for (ci, (cin, cout, k, pad, side)) in cases.enumerated() {
            let layer = ConvLayer(weight: randoms(cout * cin * k * k, seed: 1).map { $0 / Float(k) }, bias: randoms(cout, seed: 2),
                                  cin: cin, cout: cout, k: k)
            let fft = make(layer)
            let (ho, wo) = layer.outputSize(side, side, dilation: 1, padding: pad)
            let (hp, wp) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
            let side2 = side + 2 * pad
            let batch = ci == 0 ? 1 : 3
            // Padded input with its padding zeros stored.
            var x = [Float](repeating: 0, count: batch * cin * side2 * side2)
            let values = randoms(batch * cin * side * side, seed: 3)
            for bc in 0..<(batch * cin) { for y in 0..<side { for xx in 0..<side {
                x[(bc * side2 + y + pad) * side2 + xx + pad] = values[(bc * side + y) * side + xx]
            } } }
            for outPad in [0, 1] {
                let oh = hp + 2 * outPad, ow = wp + 2 * outPad, outCount = batch * cout * oh * ow
                var ref = [Float](repeating: .nan, count: outCount), refArg = [UInt8](repeating: 9, count: outCount)
                layer.forwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &ref, argmax: &refArg,
                                    scratch: ConvBandScratch())
                let dPooled = randoms(outCount, seed: 4)
                var refDW = [Float](repeating: 0, count: layer.weight.count), refDb = [Float](repeating: 0, count: cout)
                var refDx = [Float](repeating: .nan, count: x.count)
                layer.backwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, dPooled: dPooled, pooled: ref,
                                     argmax: refArg, dW: &refDW, db: &refDb, dx: &refDx, scratch: ConvBandScratch())
                // Groups of one block, a group that ends inside an image, and all of the batch's blocks in one.
                for group in groups {
                    let what = "\(kernels), case \(ci), outPad \(outPad), group \(group)"
                    let scratch = FFTConvScratch(group: group)
                    var out = [Float](repeating: .nan, count: outCount), arg = [UInt8](repeating: 9, count: outCount)
                    fft.forwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &out, argmax: &arg, scratch: scratch,
                                      profile: nil)
                    assertClose(out, ref, what + ": pooled")
                    XCTAssertEqual(arg, refArg, what + ": argmax")
                    var plain = [Float](repeating: .nan, count: outCount)
                    fft.forwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &plain, argmax: nil,
                                      scratch: scratch, profile: nil)
                    XCTAssertEqual(plain, out, what + ": the same without argmax")
                    var dW = [Float](repeating: 0.5, count: layer.weight.count), db = [Float](repeating: 0.5, count: cout)
                    var dx = [Float](repeating: .nan, count: x.count)
                    fft.backwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, dPooled: dPooled, pooled: ref,
                                       argmax: refArg, dW: &dW, db: &db, dx: &dx, scratch: scratch, profile: nil)
                    assertClose(dW.map { $0 - 0.5 }, refDW, what + ": dW (accumulated)")
                    assertClose(db.map { $0 - 0.5 }, refDb, what + ": db (accumulated)")
                    assertClose(dx, refDx, what + ": dx")
                }
                XCTAssertGreaterThan(ref.filter { $0 > 0 }.count, outCount / 4, "case \(ci): the probe must pass the ReLU")
            }
        }
    }
}
