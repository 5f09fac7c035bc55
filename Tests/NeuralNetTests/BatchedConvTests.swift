import XCTest
@testable import NeuralNet

/// The banded batch kernels (`forwardPooled`, `backwardPooled`) against the per-image path (im2col + sgemm per
/// image, then ReLU + max pool), which TrainingTests checks against finite differences: batches of 1 and odd sizes,
/// odd conv output heights (the last row unpooled), with and without padding, and band budgets from one pooled row
/// to bands that run across images.
final class BatchedConvTests: XCTestCase {
    func randoms(_ n: Int, seed: UInt64) -> [Float] {
        var r = SeededRandom(seed: seed)
        return (0..<n).map { _ in 2 * r.nextFloat() - 1 }
    }

    /// (cin, cout, k, padding, input side): an odd conv output (11 → 5 pooled rows) and an even one with padding.
    static let cases = [(2, 3, 3, 0, 13), (3, 4, 5, 1, 16)]

    func testBatchedForwardAndBackwardMatchThePerImagePath() {
        for (ci, (cin, cout, k, pad, side)) in Self.cases.enumerated() {
            let layer = ConvLayer(weight: randoms(cout * cin * k * k, seed: 1), bias: randoms(cout, seed: 2), cin: cin, cout: cout, k: k)
            let (ho, wo) = layer.outputSize(side, side, dilation: 1, padding: pad)
            let (hp, wp) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
            let K = cin * k * k, inPlane = cin * side * side, outPlane = cout * hp * wp
            for batch in [1, 3] {
                let x = randoms(batch * inPlane, seed: 3), dPooled = randoms(batch * outPlane, seed: 4)
                // The per-image path.
                var refPooled = [Float](repeating: 0, count: batch * outPlane), refArg = [Int](repeating: 0, count: batch * outPlane)
                var refDW = [Float](repeating: 0, count: layer.weight.count), refDb = [Float](repeating: 0, count: cout)
                var refDx = [Float](repeating: 0, count: batch * inPlane)
                var col: [Float] = [], dcol: [Float] = []
                for b in 0..<batch {
                    var y = [Float](repeating: 0, count: cout * ho * wo), pooled = [Float](repeating: 0, count: outPlane)
                    var arg = [Int32](repeating: 0, count: outPlane), dy = y, dx = [Float](repeating: 0, count: inPlane)
                    let xb = Array(x[(b * inPlane)..<((b + 1) * inPlane)])
                    layer.forwardWhole(xb, h: side, w: side, dilation: 1, padding: pad, weight: layer.weight, bias: layer.bias, y: &y, col: &col)
                    MaxPool.forwardRecording(y, channels: cout, h: ho, w: wo, stride: 2, dilation: 1, out: &pooled, argmax: &arg)
                    let g = Array(dPooled[(b * outPlane)..<((b + 1) * outPlane)])
                    MaxPool.backward(g, pooled: pooled, argmax: arg, channels: cout, h: ho, w: wo, outputs: hp * wp, dInput: &dy)
                    layer.backward(xb, h: side, w: side, dilation: 1, padding: pad, weight: layer.weight, dy: dy,
                                   dW: &refDW, db: &refDb, dx: &dx, col: &col, dcol: &dcol)
                    for i in 0..<outPlane {
                        refPooled[b * outPlane + i] = pooled[i]
                        // Flat index in the conv plane → position in the 2×2 window.
                        let q = i % (hp * wp), a = Int(arg[i]) - (2 * (q / wp) * wo + 2 * (q % wp))
                        refArg[b * outPlane + i] = (a >= wo ? 2 : 0) + a % wo
                    }
                    for i in 0..<inPlane { refDx[b * inPlane + i] = dx[i] }
                }
                // The batched layout: each image with its padding stored; the output with a padding of its own.
                let side2 = side + 2 * pad, inPlane2 = cin * side2 * side2
                var xPadded = [Float](repeating: 0, count: batch * inPlane2)
                for b in 0..<batch { for c in 0..<cin { for y in 0..<side { for xx in 0..<side {
                    xPadded[((b * cin + c) * side2 + y + pad) * side2 + xx + pad] = x[((b * cin + c) * side + y) * side + xx]
                } } } }
                // Band budgets: one pooled row per band, bands crossing image boundaries, the default (one band).
                for colFloats in [1, K * 2 * (side + 2 * pad) * 3, ConvBandScratch.defaultColFloats] {
                    for outPad in [0, 1] {
                        let what = "case \(ci), batch \(batch), col \(colFloats), outPad \(outPad)"
                        let scratch = ConvBandScratch(colFloats: colFloats)
                        let oh = hp + 2 * outPad, ow = wp + 2 * outPad
                        // Pooled output (b, c, y, x) in the padded output, and x's element in the padded input.
                        func o(_ i: Int) -> Int {
                            let q = i % (hp * wp), bc = i / (hp * wp)
                            return (bc * oh + q / wp + outPad) * ow + q % wp + outPad
                        }
                        func xi(_ i: Int) -> Int {
                            let q = i % (side * side), bc = i / (side * side)
                            return (bc * side2 + q / side + pad) * side2 + q % side + pad
                        }
                        var pooled = [Float](repeating: .nan, count: batch * cout * oh * ow)
                        var arg = [UInt8](repeating: 9, count: pooled.count)
                        layer.forwardPooled(xPadded, batch: batch, h: side, w: side, padding: pad, outPad: outPad, out: &pooled,
                                            argmax: &arg, scratch: scratch)
                        assertClose(refPooled.indices.map { pooled[o($0)] }, refPooled, what + ": pooled")
                        XCTAssertEqual(refArg.indices.map { Int(arg[o($0)]) }, refArg, what + ": argmax")
                        XCTAssertEqual(pooled.filter { $0 == 0 }.count - refPooled.filter { $0 == 0 }.count, pooled.count - refPooled.count,
                                       what + ": the output's padding is zeros")
                        var dPooledPadded = [Float](repeating: .nan, count: pooled.count)
                        for i in dPooled.indices { dPooledPadded[o(i)] = dPooled[i] }
                        var dW = [Float](repeating: 0, count: layer.weight.count), db = [Float](repeating: 0, count: cout)
                        var dx = [Float](repeating: .nan, count: batch * inPlane2)
                        layer.backwardPooled(xPadded, batch: batch, h: side, w: side, padding: pad, outPad: outPad, dPooled: dPooledPadded,
                                             pooled: pooled, argmax: arg, dW: &dW, db: &db, dx: &dx, scratch: scratch)
                        assertClose(dW, refDW, what + ": dW"); assertClose(db, refDb, what + ": db")
                        assertClose(refDx.indices.map { dx[xi($0)] }, refDx, what + ": dx")
                    }
                }
                XCTAssertGreaterThan(refPooled.filter { $0 > 0 }.count, refPooled.count / 4, "the probe must pass the ReLU")
            }
        }
    }
}
