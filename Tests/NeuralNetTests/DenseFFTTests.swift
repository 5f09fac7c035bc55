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
}
