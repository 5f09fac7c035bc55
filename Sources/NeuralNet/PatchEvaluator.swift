import Foundation

/// `exact` mode: the paper's network, one zero-padded 128×128 patch per pixel. Patch of pixel (r, c): rows
/// [r−64, r+64), cols [c−64, c+64), zero outside the image; gray/255 in all three channels (folded into one).
public struct PatchEvaluator: Sendable {
    public let model: AreaClassifier
    /// Patches evaluated concurrently (each with single-threaded BLAS).
    public let threads: Int

    public init(model: AreaClassifier, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.model = model; self.threads = max(1, threads)
    }

    /// Patches that go through the conv stages together: the unit of the per-thread workspace.
    public static let chunk = 8

    /// Bytes of one thread's conv-stage workspace (`Workspace`): two ping-pong activation buffers of `chunk`
    /// patches and the band scratch. The features (4608 floats per patch) are the caller's.
    public static var workspaceBytes: Int { 4 * (chunk * (pingFloats + pongFloats) + bandFloats) }
    /// Per patch, padded as the next layer reads it: the patch (130²), then conv2's pooled output; conv1's pooled
    /// output (16 · 64²), then conv3's.
    static let pingFloats = max(130 * 130, 32 * 30 * 30), pongFloats = max(16 * 64 * 64, 64 * 14 * 14)
    /// The band scratch at its largest over the four stages: (cin, cout, k, padded input width) of each.
    static let bandFloats = [(1, 16, 7, 130), (16, 32, 5, 64), (32, 64, 3, 30), (64, 128, 3, 14)]
        .map { ConvBandScratch.floats(cin: $0.0, cout: $0.1, k: $0.2, pitch: $0.3, training: false) }.max()!

    /// Evaluates the pixels `(row, col)` of a uint8 plane of `height × width`.
    public func evaluate(plane: [UInt8], height: Int, width: Int, pixels: [(Int, Int)], profile: EngineProfile? = nil) -> ClassifierOutput {
        let n = pixels.count
        var features = [Float](repeating: 0, count: n * 4608)
        // Each worker takes a contiguous share of the patches, in chunks; the convolutions run on single-threaded
        // BLAS whatever the share (OpenBLAS's multi-threaded split of a small sgemm can change the last bits).
        let workers = min(threads, max(1, n))
        BLAS.setThreads(1)
        let started = DispatchTime.now().uptimeNanoseconds
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
            profile.addIdle(seconds: wall * Double(workers) - profile.busySeconds)
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

    /// One thread's buffers for a chunk of patches (see `workspaceBytes`).
    final class Workspace {
        let ping = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.chunk * PatchEvaluator.pingFloats)
        let pong = UnsafeMutablePointer<Float>.allocate(capacity: PatchEvaluator.chunk * PatchEvaluator.pongFloats)
        let bands = ConvBandScratch()
        deinit { ping.deallocate(); pong.deallocate() }
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

    private func convChunk(plane: [UInt8], height: Int, width: Int, pixels: ArraySlice<(Int, Int)>, ws: Workspace,
                            out: UnsafeMutablePointer<Float>, profile p: EngineProfile? = nil) {
        let P = AreaClassifier.patchSize, B = pixels.count, P2 = P + 2
        p?.layer = .tile
        // Patches with conv1's zero padding (1 pixel) stored around them.
        let patches = ws.ping
        patches.update(repeating: 0, count: B * P2 * P2)
        plane.withUnsafeBufferPointer { src in
            for (b, pixel) in pixels.enumerated() {
                let r0 = pixel.0 - P / 2, c0 = pixel.1 - P / 2, patch = patches + b * P2 * P2 + P2 + 1
                let xa = max(0, -c0), xb = min(P, width - c0)
                guard xa < xb else { continue }
                for y in 0..<P {
                    let iy = r0 + y
                    guard iy >= 0 && iy < height else { continue }
                    let row = src.baseAddress! + iy * width + c0
                    for x in xa..<xb { patch[y * P2 + x] = Float(row[x]) / 255 }
                }
            }
        }
        p?.lap(.layout)
        let m = model
        // (layer, padding) per stage; each stage is conv → ReLU → 2×2 maxpool stride 2, ping → pong → ping → pong → out,
        // each output stored with the next stage's padding.
        let stages: [(ConvLayer, Int)] = [(m.conv1, 1), (m.conv2, 1), (m.conv3, 0), (m.conv4, 0)]
        var h = P, w = P
        for (si, (layer, pad)) in stages.enumerated() {
            p?.layer = EngineProfile.Layer(rawValue: EngineProfile.Layer.conv1.rawValue + si)!
            let input = si % 2 == 0 ? ws.ping : ws.pong
            let last = si == stages.count - 1
            let output = last ? out : si % 2 == 0 ? ws.pong : ws.ping
            layer.forwardPooled(input, batch: B, h: h, w: w, padding: pad, outPad: last ? 0 : stages[si + 1].1, out: output,
                                scratch: ws.bands, profile: p)
            let (ho, wo) = layer.outputSize(h, w, dilation: 1, padding: pad)
            (h, w) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
        }
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
