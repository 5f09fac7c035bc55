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

    /// Evaluates the pixels `(row, col)` of a uint8 plane of `height × width`.
    public func evaluate(plane: [UInt8], height: Int, width: Int, pixels: [(Int, Int)], profile: EngineProfile? = nil) -> ClassifierOutput {
        let n = pixels.count
        var features = [Float](repeating: 0, count: n * 4608)
        let workers = min(threads, max(1, n))
        if workers > 1 { BLAS.setThreads(1) }
        let started = DispatchTime.now().uptimeNanoseconds
        let lock = UncheckedSendable(NSLock())
        features.withUnsafeMutableBufferPointer { feat in
            let featBase = UncheckedSendable(feat.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let p = profile == nil ? nil : EngineProfile()
                p?.start()
                var ws = Workspace()
                var i = worker
                while i < n {
                    convStages(plane: plane, height: height, width: width, pixel: pixels[i], ws: &ws, out: featBase.value + i * 4608, profile: p)
                    i += workers
                }
                if let p { lock.value.lock(); profile!.merge(p); lock.value.unlock() }
            }
        }
        if let profile {   // idle: workers waiting for the last patch of the convolution stages
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
        var ws = Workspace()
        features.withUnsafeMutableBufferPointer { feat in
            for (i, px) in pixels.enumerated() {
                convStages(plane: plane, height: height, width: width, pixel: px, ws: &ws, out: feat.baseAddress! + i * 4608)
            }
        }
        return fullyConnected(features, n: pixels.count)
    }

    struct Workspace {
        var a = [Float](), col = [Float]()
    }

    /// conv1…conv4 with pooling on one patch; writes the 4608 flattened features (C, H, W order).
    private func convStages(plane: [UInt8], height: Int, width: Int, pixel: (Int, Int), ws: inout Workspace,
                            out: UnsafeMutablePointer<Float>, profile p: EngineProfile? = nil) {
        let P = AreaClassifier.patchSize
        p?.layer = .tile
        var patch = [Float](repeating: 0, count: P * P)
        let r0 = pixel.0 - P / 2, c0 = pixel.1 - P / 2
        plane.withUnsafeBufferPointer { src in
            for y in 0..<P {
                let iy = r0 + y
                guard iy >= 0 && iy < height else { continue }
                for x in max(0, -c0)..<min(P, width - c0) { patch[y * P + x] = Float(src[iy * width + c0 + x]) / 255 }
            }
        }
        p?.lap(.layout)
        let m = model
        // (layer, padding) per stage; each stage is conv → ReLU → 2×2 maxpool stride 2.
        let stages: [(ConvLayer, Int)] = [(m.conv1, 1), (m.conv2, 1), (m.conv3, 0), (m.conv4, 0)]
        var h = P, w = P
        var input = patch
        for (si, (layer, pad)) in stages.enumerated() {
            p?.layer = EngineProfile.Layer(rawValue: EngineProfile.Layer.conv1.rawValue + si)!
            let (ho, wo) = layer.outputSize(h, w, dilation: 1, padding: pad)
            if ws.a.count < layer.cout * ho * wo { ws.a = .init(repeating: 0, count: layer.cout * ho * wo) }
            p?.lap(.alloc)
            input.withUnsafeBufferPointer { inp in
                ws.a.withUnsafeMutableBufferPointer { a in
                    layer.forward(inp.baseAddress!, h: h, w: w, dilation: 1, padding: pad, relu: false, out: a.baseAddress!, workspace: &ws.col,
                                  profile: p)
                }
            }
            let (hp, wp) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
            if si == stages.count - 1 {
                ws.a.withUnsafeBufferPointer { a in
                    MaxPool.forward(a.baseAddress!, channels: layer.cout, h: ho, w: wo, stride: 2, dilation: 1, relu: true, out: out)
                }
            } else {
                var next = [Float](repeating: 0, count: layer.cout * hp * wp)
                ws.a.withUnsafeBufferPointer { a in
                    next.withUnsafeMutableBufferPointer { o in
                        MaxPool.forward(a.baseAddress!, channels: layer.cout, h: ho, w: wo, stride: 2, dilation: 1, relu: true, out: o.baseAddress!)
                    }
                }
                input = next
            }
            p?.lap(.pool, flops: 4 * Double(layer.cout * hp * wp))
            h = hp; w = wp
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
