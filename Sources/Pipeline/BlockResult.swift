import Foundation
import NeuralNet
import VolumeStore

/// The input of one block: a window of one slice around the block's pixels (the halo the net needs), clipped to
/// the volume. Beyond the volume the net sees zeros, exactly as the per-patch net does.
public struct InputWindow: Sendable {
    public let y0: Int, x0: Int, height: Int, width: Int
    public let data: [UInt8]
}

/// One block's outputs as the engine fills them, tile by tile from several threads (tiles write disjoint pixels).
/// Channel-first planes of `height × width`; pixels not predicted keep the fill values (label 0, NaN).
final class BlockResult: @unchecked Sendable {
    let block: OutputBlock
    let labels: UnsafeMutableBufferPointer<UInt8>
    let probabilities: UnsafeMutableBufferPointer<Float>
    let features: UnsafeMutableBufferPointer<Float>
    let entropy: UnsafeMutableBufferPointer<Float>
    /// Filled after the block's tiles, from the features and labels (LatentStatistics.distances).
    let anomaly: UnsafeMutableBufferPointer<Float>
    private let lock = NSLock()
    private var _predicted = 0, _computed = 0
    var predicted: Int { lock.withLock { _predicted } }
    var computed: Int { lock.withLock { _computed } }

    init(_ b: OutputBlock) {
        block = b
        let n = b.pixels
        labels = .allocate(capacity: n); labels.initialize(repeating: 0)
        probabilities = .allocate(capacity: 6 * n); probabilities.initialize(repeating: .nan)
        features = .allocate(capacity: 64 * n); features.initialize(repeating: .nan)
        entropy = .allocate(capacity: n); entropy.initialize(repeating: .nan)
        anomaly = .allocate(capacity: n); anomaly.initialize(repeating: .nan)
    }

    deinit { labels.deallocate(); probabilities.deallocate(); features.deallocate(); entropy.deallocate(); anomaly.deallocate() }

    /// Bytes held per output pixel.
    static let bytesPerPixel = 1 + 4 * (6 + 64 + 1 + 1)

    /// Stores one pixel's network output: latents (stride `ls` between channels) and logits (stride `gs`).
    @inline(__always)
    func store(y: Int, x: Int, latents: UnsafePointer<Float>, ls: Int, logits: UnsafePointer<Float>, gs: Int) {
        let n = block.pixels, i = y * block.width + x
        var l = SIMD8<Float>()
        var best = 0
        for c in 0..<6 { l[c] = logits[c * gs]; if l[c] > l[best] { best = c } }
        let m = l[best]
        var sum: Float = 0
        for c in 0..<6 { l[c] = expf(l[c] - m); sum += l[c] }
        var h: Float = 0
        for c in 0..<6 {
            let p = l[c] / sum
            probabilities[c * n + i] = p
            if p > 0 { h -= p * logf(p) }
        }
        entropy[i] = h
        labels[i] = UInt8(best + 1)
        for c in 0..<64 { features[c * n + i] = latents[c * ls] }
    }

    func count(predicted p: Int, computed c: Int) { lock.withLock { _predicted += p; _computed += c } }
}

/// The network as the pipeline runs it: one tile at a time on the calling thread (a thread of the pipeline's
/// compute pool), BLAS single-threaded. Tiles are rectangles of a block's output pixels.
enum TileEngine: Sendable {
    /// Dense (134-window valid net) with `tile` output pixels per side.
    case dense(DenseEvaluator, tile: Int)
    /// The paper's padded-128 net per pixel, `tile`² pixels per job.
    case exact(PatchEvaluator, tile: Int)

    var tile: Int { switch self { case let .dense(_, t), let .exact(_, t): return t } }

    /// Tiles of a block: (row, col, rows, cols) in block-local output pixels.
    func tiles(of b: OutputBlock) -> [(Int, Int, Int, Int)] {
        let t = tile
        return stride(from: 0, to: b.height, by: t).flatMap { ty in
            stride(from: 0, to: b.width, by: t).map { tx in (ty, tx, min(t, b.height - ty), min(t, b.width - tx)) }
        }
    }

    /// Evaluates one tile of `r`'s block and stores its tissue pixels (a tile without tissue is skipped).
    func run(tile: (Int, Int, Int, Int), window w: InputWindow, stride S: Int, mask: SliceMask?, into r: BlockResult) throws {
        let (ty, tx, nh, nw) = tile
        let b = r.block
        // Source rows/cols of the tile's pixels.
        let sy0 = S * (b.y0 + ty), sx0 = S * (b.x0 + tx)
        if let mask, !mask.any(rows: sy0..<(S * (nh - 1) + sy0 + 1), cols: sx0..<(S * (nw - 1) + sx0 + 1)) { return }
        @inline(__always) func tissue(_ y: Int, _ x: Int) -> Bool { mask?.isTissue(y: sy0 + S * y, x: sx0 + S * x) ?? true }
        var predicted = 0
        switch self {
        case let .dense(net, _):
            let th = DenseEvaluator.inputSize(outputs: nh, stride: S), tw = DenseEvaluator.inputSize(outputs: nw, stride: S)
            let input = DenseEvaluator.extract(plane: w.data, height: w.height, width: w.width,
                                               y0: sy0 - DenseEvaluator.halo - w.y0, x0: sx0 - DenseEvaluator.halo - w.x0, th: th, tw: tw)
            let out = try net.forward(tile: input, th: th, tw: tw, stride: S)
            let plane = out.height * out.width
            out.latents.withUnsafeBufferPointer { lat in out.logits.withUnsafeBufferPointer { log in
                for y in 0..<nh { for x in 0..<nw where tissue(y, x) {
                    let o = y * out.width + x
                    r.store(y: ty + y, x: tx + x, latents: lat.baseAddress! + o, ls: plane, logits: log.baseAddress! + o, gs: plane)
                    predicted += 1
                } }
            } }
            r.count(predicted: predicted, computed: nh * nw)
        case let .exact(net, _):
            var pixels: [(Int, Int)] = [], at: [(Int, Int)] = []
            for y in 0..<nh { for x in 0..<nw where tissue(y, x) {
                pixels.append((sy0 + S * y - w.y0, sx0 + S * x - w.x0)); at.append((ty + y, tx + x))
            } }
            let out = net.evaluateOnThisThread(plane: w.data, height: w.height, width: w.width, pixels: pixels)
            out.latents.withUnsafeBufferPointer { lat in out.logits.withUnsafeBufferPointer { log in
                for (i, (y, x)) in at.enumerated() {
                    r.store(y: y, x: x, latents: lat.baseAddress! + 64 * i, ls: 1, logits: log.baseAddress! + 6 * i, gs: 1)
                }
            } }
            r.count(predicted: pixels.count, computed: pixels.count)
        }
    }
}
