import XCTest
@testable import NeuralNet

/// `bench cnn --profile`'s instrumentation: it must not change results, and the FLOPs it charges must be the
/// network's.
final class EngineProfileTests: XCTestCase {
    func testProfiledRunsGiveTheSameOutputsAndCountTheNetworksFLOPs() throws {
        let model = try AreaClassifier(parameters: AreaClassifier.randomParameters(seed: 3))
        let H = 176 + 133, W = 176 + 133   // one whole 176² tile: every FFT block is full
        var s: UInt64 = 7
        let plane = (0..<(H * W)).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: s >> 56) }
        let dense = DenseEvaluator(model: model, fc1: .fft)
        let rows = 67..<(67 + 176), cols = 67..<(67 + 176)
        let plain = try dense.evaluate(plane: plane, height: H, width: W, rows: rows, cols: cols, stride: 1, tile: 176, parallelTiles: 1, blasThreads: 1)
        let p = EngineProfile()
        let profiled = try dense.evaluate(plane: plane, height: H, width: W, rows: rows, cols: cols, stride: 1, tile: 176,
                                          parallelTiles: 1, blasThreads: 1, profile: p)
        XCTAssertEqual(plain.latents, profiled.latents)
        XCTAssertEqual(plain.logits, profiled.logits)

        let px = Double(176 * 176)
        func flops(_ l: EngineProfile.Layer, _ k: EngineProfile.Kind) -> Double {
            p.stages.first { $0.layer == l && $0.kind == k }?.flops ?? 0
        }
        // Each conv's sgemm: 2 · cout · cin·k² per pixel of its (larger) output, here per output pixel after the
        // stride-1 dense net's shrinking borders: conv1 runs on 303², conv2 on 294², conv3 on 284², conv4 on 264².
        for (l, layer, side) in [(EngineProfile.Layer.conv1, model.conv1, 303), (.conv2, model.conv2, 294), (.conv3, model.conv3, 284), (.conv4, model.conv4, 264)] {
            XCTAssertEqual(flops(l, .gemm), 2 * Double(layer.cout * layer.cin * layer.k * layer.k * side * side), "\(l)")
        }
        // fc1's products: cgemm3m = 6 real flops per complex MAC, 144 bins, 256 phases × one 11×11 block each.
        XCTAssertEqual(flops(.fc1, .fftProduct), Double(144 * 6 * 256 * 128 * 1024))
        XCTAssertEqual(flops(.fc2, .gemm), 2 * 64 * 1024 * px)
        XCTAssertEqual(flops(.fc3, .gemm), 2 * 6 * 64 * px)
        XCTAssertGreaterThan(p.busySeconds, 0)

        let exact = PatchEvaluator(model: model, threads: 2)
        let pixels = [(0, 0), (100, 150), (H - 1, W - 1)]
        let ep = EngineProfile()
        let a = exact.evaluate(plane: plane, height: H, width: W, pixels: pixels)
        let b = exact.evaluate(plane: plane, height: H, width: W, pixels: pixels, profile: ep)
        XCTAssertEqual(a.latents, b.latents)
        XCTAssertEqual(ep.stages.first { $0.layer == .fc1 && $0.kind == .gemm }?.flops, 2 * 3 * 4608 * 1024)
        // conv2 by FFT blocks: its 60² output (62² input, padding 1) in 5×5 blocks of 12² per patch; per block and
        // bin, the complex [cin]·[cin × cout] product as the real block product 2 · (2·cin) · (2·cout).
        let conv2 = ep.stages.first { $0.layer == .conv2 && $0.kind == .fftProduct }?.flops
        XCTAssertEqual(conv2, Double(3 * 25 * 144 * 2 * (2 * model.conv2.cin) * (2 * model.conv2.cout)))
    }
}
