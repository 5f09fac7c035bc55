import Foundation

/// `exact` mode: the paper's network, one zero-padded 128×128 patch per pixel. Patch of pixel (r, c): rows
/// [r−64, r+64), cols [c−64, c+64), zero outside the image; gray/255 in all three channels (folded into one).
public struct PatchEvaluator: Sendable {
    public let model: AreaClassifier
    /// Patches evaluated concurrently (each with single-threaded BLAS).
    public let threads: Int

    public init(model: AreaClassifier, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.model = model; self.threads = max(1, threads)
        conv2FFT = FFTPooledConv(model.conv2)
    }

    /// conv2 by 16×16 FFT blocks (its 5×5 kernel: ~5× fewer FLOPs than the banded sgemm).
    let conv2FFT: FFTPooledConv

    /// Patches whose conv4 runs as one banded pass (its bands run on from one patch into the next: conv4 has only
    /// 12 conv rows per patch), and whose features are written together.
    public static let chunk = 8

    /// Bytes of one thread's conv-stage workspace (`Workspace`): one patch's input, conv1 and conv2 outputs, the
    /// chunk's conv3 outputs (conv4's input), the band scratch and conv2's FFT spectra (one patch's 25 blocks).
    /// The features (4608 floats per patch) are the caller's.
    public static var workspaceBytes: Int {
        4 * (patchFloats + conv1Floats + conv2Floats + chunk * conv3Floats + bandFloats + fftFloats)
    }
    /// Per patch, padded as the next layer reads it: the patch (130²), conv1's pooled output (16 · 64²), conv2's
    /// (32 · 30²), conv3's (64 · 14²).
    static let patchFloats = 130 * 130, conv1Floats = 16 * 64 * 64, conv2Floats = 32 * 30 * 30, conv3Floats = 64 * 14 * 14
    /// The band scratch at its largest over the banded stages: (cin, cout, k, padded input width) of each.
    static let bandFloats = [(1, 16, 7, 130), (32, 64, 3, 30), (64, 128, 3, 14)]
        .map { ConvBandScratch.floats(cin: $0.0, cout: $0.1, k: $0.2, pitch: $0.3, training: false) }.max()!
    static let fftFloats = FFTPooledConv.scratchFloats(cin: 16, cout: 32, training: false)

    /// Evaluates the pixels `(row, col)` of a uint8 plane of `height × width`.
    public func evaluate(plane: [UInt8], height: Int, width: Int, pixels: [(Int, Int)], profile: EngineProfile? = nil) -> ClassifierOutput {
        let n = pixels.count
        var features = [Float](repeating: 0, count: n * 4608)
        // Each worker takes a contiguous share of the patches, in chunks; the convolutions run on single-threaded
        // BLAS whatever the share (OpenBLAS's multi-threaded split of a small sgemm can change the last bits).
        let workers = min(threads, max(1, n))
        BLAS.setThreads(1)
        let started = DispatchTime.now().uptimeNanoseconds, busyBefore = profile?.busySeconds ?? 0
        let lock = UncheckedSendable(NSLock())
        features.withUnsafeMutableBufferPointer { feat in
            let featBase = UncheckedSendable(feat.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let p = profile == nil ? nil : EngineProfile()
                p?.start()
                let ws = Workspace()
                let lo = n * worker / workers, hi = n * (worker + 1) / workers
                convStages(plane: plane, height: height, width: width, pixels: pixels[lo..<hi], ws: ws,
                           out: featBase.value + lo * 4608, profile: p)
                if let p { lock.value.lock(); profile!.merge(p); lock.value.unlock() }
            }
        }
        if let profile {   // idle: workers waiting for the last chunk of the convolution stages
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            profile.addIdle(seconds: wall * Double(workers) - (profile.busySeconds - busyBefore))   // this call's alone
        }
        BLAS.setThreads(threads)
        profile?.threads = threads
        profile?.start()
        defer { profile?.threads = 1; profile?.layer = .tile }
        return fullyConnected(features, n: n, profile: profile)
    }

    /// The same on the calling thread, leaving the BLAS thread count alone: for callers that own the threading
    /// (the prediction pipeline runs one of these per worker thread, with BLAS set to one thread).
    public func evaluateOnThisThread(plane: [UInt8], height: Int, width: Int, pixels: [(Int, Int)]) -> ClassifierOutput {
        var features = [Float](repeating: 0, count: pixels.count * 4608)
        let ws = Workspace()
        features.withUnsafeMutableBufferPointer { feat in
            convStages(plane: plane, height: height, width: width, pixels: pixels[...], ws: ws, out: feat.baseAddress!)
        }
        return fullyConnected(features, n: pixels.count)
    }

    /// One thread's buffers (see `workspaceBytes`).
    final class Workspace {
        let patch = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.patchFloats)
        let conv1 = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.conv1Floats)
        let conv2 = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.conv2Floats)
        let conv3 = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.chunk * PatchEvaluator.conv3Floats)
        let bands = ConvBandScratch()
        let fft = FFTConvScratch()
        deinit { patch.deallocate(); conv1.deallocate(); conv2.deallocate(); conv3.deallocate() }
    }

    /// conv1…conv4 with pooling, `chunk` patches at a time; writes the i-th patch's 4608 flattened features (C, H, W
    /// order) at out + 4608·i.
    private func convStages(plane: [UInt8], height: Int, width: Int, pixels: ArraySlice<(Int, Int)>, ws: Workspace,
                            out: UnsafeMutablePointer<Float>, profile p: EngineProfile? = nil) {
        var lo = pixels.startIndex
        while lo < pixels.endIndex {
            let hi = min(pixels.endIndex, lo + Self.chunk)
            convChunk(plane: plane, height: height, width: width, pixels: pixels[lo..<hi], ws: ws,
                      out: out + (lo - pixels.startIndex) * 4608, profile: p)
            lo = hi
        }
    }

    /// Each patch through conv1, conv2 (FFT) and conv3 on its own — one patch's activations at a time, so the
    /// spectra fit in the workspace the chunk-wide buffers took before — then conv4 over the chunk. Every stage is
    /// conv → ReLU → 2×2 maxpool stride 2, its output stored with the next stage's padding.
    private func convChunk(plane: [UInt8], height: Int, width: Int, pixels: ArraySlice<(Int, Int)>, ws: Workspace,
                            out: UnsafeMutablePointer<Float>, profile p: EngineProfile? = nil) {
        let P = AreaClassifier.patchSize, P2 = P + 2, m = model
        func pooledSide(_ layer: ConvLayer, _ side: Int, _ pad: Int) -> Int {
            PooledConvGeometry(layer, h: side, w: side, padding: pad, outPad: 0).ph
        }
        let s1 = pooledSide(m.conv1, P, 1), s2 = pooledSide(m.conv2, s1, 1), s3 = pooledSide(m.conv3, s2, 0)
        for (b, pixel) in pixels.enumerated() {
            p?.layer = .tile
            // The patch with conv1's zero padding (1 pixel) stored around it.
            let patch = ws.patch
            patch.update(repeating: 0, count: P2 * P2)
            let r0 = pixel.0 - P / 2, c0 = pixel.1 - P / 2, inner = patch + P2 + 1
            let xa = max(0, -c0), xb = min(P, width - c0)
            if xa < xb {
                plane.withUnsafeBufferPointer { src in
                    for y in 0..<P {
                        let iy = r0 + y
                        guard iy >= 0 && iy < height else { continue }
                        let row = src.baseAddress! + iy * width + c0
                        for x in xa..<xb { inner[y * P2 + x] = Float(row[x]) / 255 }
                    }
                }
            }
            p?.lap(.layout)
            p?.layer = .conv1
            if m.conv1.runsDirect {
                m.conv1.directForwardPooled(patch, batch: 1, h: P, w: P, padding: 1, outPad: 1, out: ws.conv1, profile: p)
            } else {
                m.conv1.forwardPooled(patch, batch: 1, h: P, w: P, padding: 1, outPad: 1, out: ws.conv1, scratch: ws.bands, profile: p)
            }
            p?.layer = .conv2
            conv2FFT.forwardPooled(ws.conv1, batch: 1, h: s1, w: s1, padding: 1, out: ws.conv2, scratch: ws.fft, profile: p)
            p?.layer = .conv3
            m.conv3.forwardPooled(ws.conv2, batch: 1, h: s2, w: s2, padding: 0, out: ws.conv3 + b * Self.conv3Floats,
                                  scratch: ws.bands, profile: p)
        }
        p?.layer = .conv4
        m.conv4.forwardPooled(ws.conv3, batch: pixels.count, h: s3, w: s3, padding: 0, out: out, scratch: ws.bands, profile: p)
    }

    /// fc1 → ReLU → fc2 (latents) → fc3 (logits), batched over all patches as three sgemms.
    private func fullyConnected(_ x: [Float], n: Int, profile p: EngineProfile? = nil) -> ClassifierOutput {
        guard n > 0 else { return ClassifierOutput(latents: [], logits: []) }
        let m = model
        func linear(_ input: [Float], _ layer: ConvLayer, relu: Bool, _ stage: EngineProfile.Layer) -> [Float] {
            p?.layer = stage
            let K = layer.cin * layer.k * layer.k
            var y = [Float](repeating: 0, count: n * layer.cout)
            p?.lap(.alloc)
            input.withUnsafeBufferPointer { xi in layer.weight.withUnsafeBufferPointer { wt in y.withUnsafeMutableBufferPointer { yo in
                BLAS.gemm(m: n, n: layer.cout, k: K, a: xi.baseAddress!, lda: K, b: wt.baseAddress!, ldb: K,
                          c: yo.baseAddress!, ldc: layer.cout, transB: true)
            } } }
            p?.lap(.gemm, flops: 2 * Double(n * layer.cout * K))
            for i in 0..<n { for j in 0..<layer.cout {
                let v = y[i * layer.cout + j] + layer.bias[j]
                y[i * layer.cout + j] = relu ? max(v, 0) : v
            } }
            p?.lap(.bias, flops: Double(n * layer.cout * (relu ? 2 : 1)))   // single-threaded, but charged × BLAS threads
            return y
        }
        let h1 = linear(x, m.fc1, relu: true, .fc1)
        let lat = linear(h1, m.fc2, relu: false, .fc2)
        return ClassifierOutput(latents: lat, logits: linear(lat, m.fc3, relu: false, .fc3))
    }
}

/// A pointer handed to concurrentPerform workers that write disjoint ranges.
public struct UncheckedSendable<T>: @unchecked Sendable { public let value: T; public init(_ v: T) { value = v } }

/// body(range) for contiguous ranges covering 0..<count, one per thread (up to `threads`); a single inline call when
/// `count` is below `minimum` (splitting a small loop costs more than it saves).
func concurrentRanges(_ count: Int, threads: Int, minimum: Int = 1 << 17, _ body: @Sendable (Range<Int>) -> Void) {
    let parts = count >= minimum ? max(1, threads) : 1
    DispatchQueue.concurrentPerform(iterations: parts) { q in body((q * count / parts)..<((q + 1) * count / parts)) }
}
