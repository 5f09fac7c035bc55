import CKernels
import XCTest
@testable import NeuralNet

/// conv1's direct conv → ReLU → pool stage against the banded im2col + sgemm stage (`BatchedConvTests` checks that
/// one against the per-image path): pooled outputs, argmax, dW and db, on conv1's two forms (valid 134 → 64², padded
/// 128 → 62², whose last column block is partial) and odd sizes and kernels (generic k, odd conv output sides, a
/// partial block that is the only one), with and without padding around the output, on both builds of the C kernels.
final class DirectPooledConvTests: XCTestCase {
    func randoms(_ n: Int, seed: UInt64) -> [Float] {
        var r = SeededRandom(seed: seed)
        return (0..<n).map { _ in 2 * r.nextFloat() - 1 }
    }

    /// (cout, k, padding, input side, batch).
    static let cases = [(16, 7, 0, 134, 1), (16, 7, 1, 128, 2), (8, 5, 0, 23, 3), (4, 7, 1, 37, 2), (12, 8, 2, 9, 2)]

    func testDirectStageMatchesTheBandedStage() {
        let native = bm_kernels_level()
        defer { _ = bm_kernels_select(native) }
        for level in Set([native, 1]).sorted(by: >) {
            XCTAssertEqual(bm_kernels_select(level), level)
            for (ci, (cout, k, pad, side, batch)) in Self.cases.enumerated() {
                let layer = ConvLayer(weight: randoms(cout * k * k, seed: 1).map { $0 / Float(k) }, bias: randoms(cout, seed: 2),
                                      cin: 1, cout: cout, k: k)
                XCTAssertTrue(layer.runsDirect)
                let (ho, wo) = layer.outputSize(side, side, dilation: 1, padding: pad)
                let (hp, wp) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
                let side2 = side + 2 * pad
                var x = [Float](repeating: 0, count: batch * side2 * side2)
                let values = randoms(batch * side * side, seed: 3)
                for b in 0..<batch { for y in 0..<side { for xx in 0..<side {
                    x[(b * side2 + y + pad) * side2 + xx + pad] = values[(b * side + y) * side + xx]
                } } }
                for outPad in [0, 1] {
                    let what = "kernels \(FFT16.kernelLevel), case \(ci), outPad \(outPad)"
                    let oh = hp + 2 * outPad, ow = wp + 2 * outPad, outCount = batch * cout * oh * ow
                    var ref = [Float](repeating: .nan, count: outCount), refArg = [UInt8](repeating: 9, count: outCount)
                    layer.forwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &ref, argmax: &refArg,
                                        scratch: ConvBandScratch())
                    var out = [Float](repeating: .nan, count: outCount), arg = [UInt8](repeating: 9, count: outCount)
                    layer.directForwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &out, argmax: &arg)
                    assertClose(out, ref, what + ": pooled")
                    // The border of a padded output is not the kernel's: argmax there is whatever the caller left.
                    let inside = (0..<outCount).filter { i in
                        let r = (i % (oh * ow)) / ow, c = i % ow
                        return r >= outPad && r < oh - outPad && c >= outPad && c < ow - outPad
                    }
                    XCTAssertEqual(inside.map { arg[$0] }, inside.map { refArg[$0] }, what + ": argmax")
                    var plain = [Float](repeating: .nan, count: outCount)
                    layer.directForwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &plain)
                    XCTAssertEqual(plain, out, what + ": the same without argmax")
                    XCTAssertGreaterThan(ref.filter { $0 > 0 }.count, outCount / 4, what + ": the probe must pass the ReLU")

                    let dPooled = randoms(outCount, seed: 4)
                    var refDW = [Float](repeating: 0, count: layer.weight.count), refDb = [Float](repeating: 0, count: cout)
                    layer.backwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, dPooled: dPooled, pooled: ref,
                                         argmax: refArg, dW: &refDW, db: &refDb, dx: nil, scratch: ConvBandScratch())
                    var dW = [Float](repeating: 0.5, count: layer.weight.count), db = [Float](repeating: 0.5, count: cout)
                    layer.directBackwardPooled(x, batch: batch, h: side, w: side, padding: pad, outPad: outPad, dPooled: dPooled,
                                               pooled: ref, argmax: refArg, dW: &dW, db: &db)
                    assertClose(dW.map { $0 - 0.5 }, refDW, what + ": dW (accumulated)")
                    assertClose(db.map { $0 - 0.5 }, refDb, what + ": db (accumulated)")
                }
            }
        }
    }

    func testOnlyOneInputChannelSmallKernelsRunDirect() {
        XCTAssertFalse(ConvLayer(weight: .init(repeating: 0, count: 2 * 16 * 9), bias: .init(repeating: 0, count: 16), cin: 2, cout: 16, k: 3).runsDirect)
        XCTAssertFalse(ConvLayer(weight: .init(repeating: 0, count: 16 * 81), bias: .init(repeating: 0, count: 16), cin: 1, cout: 16, k: 9).runsDirect)
        XCTAssertFalse(ConvLayer(weight: .init(repeating: 0, count: 6 * 49), bias: .init(repeating: 0, count: 6), cin: 1, cout: 6, k: 7).runsDirect)
    }
}
