import Foundation

/// Loss and gradients of a minibatch: forward and backward through every layer of a `NetworkShape`, mean
/// cross-entropy over the batch. The batch is split into contiguous parts, one per thread, each with
/// single-threaded BLAS and its own gradient accumulators, summed in thread order at the end: the result depends on
/// the seed, the batch and the thread count, nothing else.
///
/// Conv stages run over the thread's whole part: by 16×16 FFT blocks where that pays (`FFTPooledConv.pays`: conv2),
/// by Winograd F(2×2, 3×3) tiles for 3×3 kernels (`WinogradPooledConv`: conv3 and conv4; 2.4× and 2.7× fewer
/// multiply-adds than the banded sgemm, about half its time by `bench train --profile`), directly for one input channel (`ConvLayer.runsDirect`: conv1,
/// folded), band by band otherwise (`forwardPooled` / `backwardPooled`); the linear layers run as sgemms over the part.
public final class Backprop {
    public let shape: NetworkShape
    public let threads: Int
    private var workers: [Worker]

    public struct Result: Sendable {
        /// Sum over the batch of the per-sample cross-entropy (divide by the count for the mean).
        public var lossSum: Double
        /// Predicted class per sample (argmax of the logits).
        public var predictions: [Int]
        /// Gradients of the mean loss, in `parameterShapes` order (empty when not requested).
        public var gradients: [[Float]]
        /// The last hidden layer's output per sample (n × its width: fc2's 64 latents for the paper's net), when
        /// requested; what the anomaly map's class statistics are built from.
        public var latents: [Float] = []
    }

    public init(shape: NetworkShape, threads: Int) {
        self.shape = shape; self.threads = max(1, threads)
        workers = (0..<max(1, threads)).map { _ in Worker() }
    }

    /// Runs `count` gray images (`shape.input`² floats each, in [0, 1]) with their labels. `dropout`: per-sample keep
    /// scales (`shape.dropoutWidth` each; 0 or 1/(1−p)), or nil for evaluation (no dropout). Gradients only when
    /// `gradients` (the per-thread accumulators are skipped otherwise).
    /// With `profile`, each stage's thread time and FLOPs are added to it (`bench train --profile`).
    public func run(parameters: [Tensor], images: UnsafeBufferPointer<Float>, labels: [Int], dropout: [Float]?,
                    gradients wantGradients: Bool, latents wantLatents: Bool = false, profile: EngineProfile? = nil) -> Result {
        let n = labels.count
        precondition(images.count == n * shape.input * shape.input)
        precondition(dropout == nil || dropout!.count == n * shape.dropoutWidth)
        let net = Net(shape: shape, parameters: parameters)
        let parts = min(threads, max(1, n))
        let saved = BLAS.threads
        if parts > 1 { BLAS.setThreads(1) }
        let ws = UncheckedSendable(workers)
        let img = UncheckedSendable(images.baseAddress!)
        let drop = dropout, plane = shape.input * shape.input, dw = shape.dropoutWidth
        let lock = UncheckedSendable(NSLock()), started = DispatchTime.now().uptimeNanoseconds
        let busyBefore = profile?.busySeconds ?? 0   // the profile may hold earlier calls'
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            let lo = n * t / parts, hi = n * (t + 1) / parts
            guard hi > lo else { return }
            let p = profile == nil ? nil : EngineProfile()
            p?.start()
            ws.value[t].run(net: net, images: img.value + lo * plane, labels: Array(labels[lo..<hi]),
                            dropout: drop.map { Array($0[(lo * dw)..<(hi * dw)]) }, batch: n, gradients: wantGradients, profile: p)
            if let p { lock.value.lock(); profile!.merge(p); lock.value.unlock() }
        }
        if let profile {   // idle: parts waiting for the slowest
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            profile.addIdle(seconds: wall * Double(parts) - (profile.busySeconds - busyBefore))
        }
        if parts > 1 { BLAS.setThreads(saved) }
        var loss = 0.0, predictions: [Int] = [], latents: [Float] = []
        for t in 0..<parts { loss += workers[t].lossSum; predictions += workers[t].predictions }
        if wantLatents, let width = shape.linears.dropLast().last?.out {
            for t in 0..<parts where n * (t + 1) / parts > n * t / parts {
                latents += UnsafeBufferPointer(start: workers[t].zs[shape.linears.count - 2].p, count: (n * (t + 1) / parts - n * t / parts) * width)
            }
        }
        var grads: [[Float]] = []
        if wantGradients {
            // The parts' sums, in part order (as a serial loop adds them), large tensors split over the threads:
            // fc1's 4.7 M floats per part are the bulk of a batch's memory traffic outside the layers.
            let sources = UncheckedSendable((0..<parts).filter { n * ($0 + 1) / parts > n * $0 / parts }.map { UnsafePointer(workers[$0].grads.p) })
            var offset = 0
            for (_, dims) in shape.parameterShapes {
                let count = dims.reduce(1, *), at = offset
                offset += count
                guard !sources.value.isEmpty else { grads.append([Float](repeating: 0, count: count)); continue }   // an empty batch
                grads.append([Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    let dst = UncheckedSendable(buffer.baseAddress)
                    concurrentRanges(count, threads: parts) { range in
                        guard let d = dst.value else { return }
                        let src = sources.value
                        for j in range {
                            var v = src[0][at + j]
                            for t in 1..<src.count { v += src[t][at + j] }
                            d[j] = v
                        }
                    }
                    initialized = count
                })
            }
        }
        return Result(lossSum: loss, predictions: predictions, gradients: grads, latents: latents)
    }

    /// Dropout keep scales for `count` samples: sample `first + i`'s mask is a function of (seed, stream, first + i)
    /// only, so it does not depend on batching or threads.
    public static func dropoutMasks(shape: NetworkShape, seed: UInt64, stream: UInt64, first: Int, count: Int) -> [Float] {
        let w = shape.dropoutWidth, p = shape.dropout, keep = 1 / (1 - p)
        var out = [Float](repeating: 0, count: count * w)
        for i in 0..<count {
            var rng = SeededRandom(seed: seed, stream: stream, index: UInt64(first + i))
            for j in 0..<w { out[i * w + j] = rng.nextFloat() < p ? 0 : keep }
        }
        return out
    }
}

/// The parameters arranged for one pass: conv layers (conv1 with its identical input channels folded) and linears.
private struct Net: @unchecked Sendable {
    let shape: NetworkShape
    let convs: [ConvLayer]
    /// The transform-domain form of the conv layers it pays for (nil: banded im2col + sgemm).
    let transformed: [TransformPooledConv?]
    let linearW: [[Float]], linearB: [[Float]]

    init(shape: NetworkShape, parameters p: [Tensor]) {
        self.shape = shape
        precondition(p.count == shape.parameterShapes.count)
        let geo = shape.convGeometry
        var convs: [ConvLayer] = []
        for (i, c) in shape.convs.enumerated() {
            var w = p[2 * i].data
            if i == 0 && shape.inChannels > 1 {
                let kk = c.k * c.k
                var folded = [Float](repeating: 0, count: c.out * kk)
                for o in 0..<c.out { for ch in 0..<shape.inChannels { for j in 0..<kk {
                    folded[o * kk + j] += w[(o * shape.inChannels + ch) * kk + j]
                } } }
                w = folded
            }
            convs.append(ConvLayer(weight: w, bias: p[2 * i + 1].data, cin: geo[i].cin, cout: c.out, k: c.k))
        }
        self.convs = convs
        transformed = convs.map {
            FFTPooledConv.pays(for: $0) ? FFTPooledConv($0) : WinogradPooledConv.fits($0) ? WinogradPooledConv($0) : nil
        }
        let base = 2 * shape.convs.count
        linearW = shape.linears.indices.map { p[base + 2 * $0].data }
        linearB = shape.linears.indices.map { p[base + 2 * $0 + 1].data }
    }
}

/// A growable scratch allocation whose address is stable between resizes (hot loops use raw pointers).
final class Scratch<T: Numeric> {
    private(set) var p = UnsafeMutablePointer<T>.allocate(capacity: 1)
    private var capacity = 1
    /// At least `n` elements; the contents are not kept.
    func reserve(_ n: Int) -> UnsafeMutablePointer<T> {
        if n > capacity { p.deallocate(); p = .allocate(capacity: n); capacity = n }
        return p
    }
    deinit { p.deallocate() }
}

/// One thread's buffers, kept across batches (no page faults per step).
private final class Worker {
    var lossSum = 0.0
    var predictions: [Int] = []
    /// Gradients of every parameter, concatenated in `parameterShapes` order.
    var grads = Scratch<Float>()
    // Per conv stage, for the whole part: pooled outputs and the argmax each took.
    var pooled: [Scratch<Float>] = [], argmax: [Scratch<UInt8>] = [], dp: [Scratch<Float>] = []
    // Per linear layer: its (dropped-out) input rows, and its output rows (post-ReLU where it has one).
    var xs: [Scratch<Float>] = [], zs: [Scratch<Float>] = []
    // The conv stages' band scratch, and conv1's gradient on its channel-folded weights.
    let bands = ConvBandScratch(), fft = FFTConvScratch(group: Worker.fftGroup)
    /// Transform blocks per group of per-bin products in training (a part's conv2 has 25 FFT blocks per sample; the
    /// Winograd stages round it down to whole rows of tiles: 42 for conv3, 48 for conv4).
    static let fftGroup = 50
    var dWfolded = Scratch<Float>(), paddedImages = Scratch<Float>()

    func run(net: Net, images: UnsafePointer<Float>, labels: [Int], dropout: [Float]?, batch: Int, gradients: Bool,
             profile p: EngineProfile?) {
        let s = net.shape, geo = s.convGeometry, m = labels.count
        let fin = s.linearInputs, L = s.convs.count, F = s.linears.count
        if pooled.count != L {
            pooled = (0..<L).map { _ in Scratch() }; argmax = (0..<L).map { _ in Scratch() }; dp = (0..<L).map { _ in Scratch() }
        }
        if xs.count != F { xs = (0..<F).map { _ in Scratch() }; zs = (0..<F).map { _ in Scratch() } }
        // Stage l's input is stored with its padding: the images (copied into a padded buffer if conv1 pads), then
        // each pooled output with the next conv's padding around it.
        func pad(_ l: Int) -> Int { l < L ? s.convs[l].pad : 0 }
        func stageFloats(_ l: Int) -> Int {
            let side = geo[l].pooled + 2 * pad(l + 1)
            return s.convs[l].out * side * side
        }
        let P = (0..<L).map { pooled[$0].reserve(m * stageFloats($0)) }
        let A = (0..<L).map { argmax[$0].reserve(m * stageFloats($0)) }
        let x0: UnsafePointer<Float>
        if pad(0) > 0 {
            let side = s.input, p = pad(0), side2 = side + 2 * p
            let padded = paddedImages.reserve(m * side2 * side2)
            padded.update(repeating: 0, count: m * side2 * side2)
            for j in 0..<m { for y in 0..<side {
                (padded + (j * side2 + y + p) * side2 + p).update(from: images + (j * side + y) * side, count: side)
            } }
            x0 = UnsafePointer(padded)
        } else { x0 = images }
        p?.layer = .tile
        p?.lap(.layout)
        func convStage(_ l: Int) -> EngineProfile.Layer { EngineProfile.Layer(rawValue: EngineProfile.Layer.conv1.rawValue + min(l, 3))! }
        func linearStage(_ i: Int) -> EngineProfile.Layer { EngineProfile.Layer(rawValue: EngineProfile.Layer.fc1.rawValue + min(i, 2))! }
        func stageInput(_ l: Int) -> UnsafePointer<Float> { l == 0 ? x0 : UnsafePointer(P[l - 1]) }
        // Conv stages over the whole part, band by band: pooled = maxpool(ReLU(conv(x) + b)), with the argmax.
        for l in 0..<L {
            p?.layer = convStage(l)
            if let f = net.transformed[l] {
                f.forwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l), outPad: pad(l + 1),
                                out: P[l], argmax: A[l], scratch: fft, profile: p)
            } else if net.convs[l].runsDirect {
                net.convs[l].directForwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l),
                                                 outPad: pad(l + 1), out: P[l], argmax: A[l], profile: p)
            } else {
                net.convs[l].forwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l), outPad: pad(l + 1),
                                           out: P[l], argmax: A[l], scratch: bands, profile: p)
            }
        }
        // Linear layers over the part: x_i = dropout(a_i), z_i = x_i·Wᵢᵀ + b_i, a_{i+1} = ReLU(z_i) or z_i.
        let dw = s.dropoutWidth
        let X = (0..<F).map { xs[$0].reserve(m * fin[$0]) }
        let Z = (0..<F).map { zs[$0].reserve(m * s.linears[$0].out) }
        var maskOffset = 0
        for (i, lin) in s.linears.enumerated() {
            p?.layer = linearStage(i)
            let nin = fin[i]
            let a = i == 0 ? P[L - 1] : Z[i - 1]
            for r in 0..<m {
                let ar = a + r * nin, xr = X[i] + r * nin
                if let d = dropout {
                    d.withUnsafeBufferPointer { db in
                        let dr = db.baseAddress! + r * dw + maskOffset
                        for k in 0..<nin { xr[k] = ar[k] * dr[k] }
                    }
                } else { xr.update(from: ar, count: nin) }
            }
            maskOffset += nin
            p?.lap(.layout)
            net.linearW[i].withUnsafeBufferPointer { w in
                BLAS.gemm(m: m, n: lin.out, k: nin, a: X[i], lda: nin, b: w.baseAddress!, ldb: nin, c: Z[i], ldc: lin.out, transB: true)
            }
            p?.lap(.gemm, flops: 2 * Double(m * lin.out * nin))
            let b = net.linearB[i]
            for r in 0..<m { for o in 0..<lin.out {
                let v = Z[i][r * lin.out + o] + b[o]
                Z[i][r * lin.out + o] = lin.relu ? max(v, 0) : v
            } }
            p?.lap(.bias)
        }
        // Cross-entropy; dL/dlogits = (softmax − onehot) / batch.
        let C = s.classes
        var g = [Float](repeating: 0, count: m * C)
        lossSum = 0
        predictions = []
        for r in 0..<m {
            let row = Z[F - 1] + r * C
            var mx = row[0], arg = 0
            for k in 1..<C where row[k] > mx { mx = row[k]; arg = k }
            predictions.append(arg)
            var sum = 0.0
            for k in 0..<C { sum += Foundation.exp(Double(row[k] - mx)) }
            lossSum += Foundation.log(sum) + Double(mx) - Double(row[labels[r]])
            for k in 0..<C {
                let p = Foundation.exp(Double(row[k] - mx)) / sum
                g[r * C + k] = Float((p - (k == labels[r] ? 1 : 0)) / Double(batch))
            }
        }
        p?.lap(.bias)   // the cross-entropy, charged to the last layer
        guard gradients else { return }
        p?.backward = true
        defer { p?.backward = false }
        let sizes = s.parameterShapes.map { $0.1.reduce(1, *) }
        let G = grads.reserve(sizes.reduce(0, +))
        var offsets: [Int] = [], total = 0
        for c in sizes { offsets.append(total); total += c }
        func grad(_ i: Int) -> UnsafeMutablePointer<Float> { G + offsets[i] }
        // Accumulators start at zero, but for the linear weights (one sgemm writes each whole, and fc1's would cost
        // a 19 MB memset per part and batch).
        for i in sizes.indices where !(i >= 2 * L && i % 2 == 0) { grad(i).update(repeating: 0, count: sizes[i]) }
        p?.lap(.alloc)
        // Linear layers, last to first; g = dL/dz_i.
        for i in stride(from: F - 1, through: 0, by: -1) {
            p?.layer = linearStage(i)
            let lin = s.linears[i], nin = fin[i], wi = 2 * L + 2 * i
            g.withUnsafeBufferPointer { gb in
                BLAS.gemm(m: lin.out, n: nin, k: m, a: gb.baseAddress!, lda: lin.out, b: X[i], ldb: nin,
                          c: grad(wi), ldc: nin, transA: true)
                let db = grad(wi + 1)
                for r in 0..<m { for o in 0..<lin.out { db[o] += gb[r * lin.out + o] } }
            }
            // dL/dx_i = g·W_i, then through dropout (× mask) and the previous layer's ReLU.
            var gx = [Float](repeating: 0, count: m * nin)
            g.withUnsafeBufferPointer { gb in net.linearW[i].withUnsafeBufferPointer { w in gx.withUnsafeMutableBufferPointer { o in
                BLAS.gemm(m: m, n: nin, k: lin.out, a: gb.baseAddress!, lda: lin.out, b: w.baseAddress!, ldb: nin,
                          c: o.baseAddress!, ldc: nin)
            } } }
            p?.lap(.gemm, flops: 4 * Double(m * lin.out * nin))
            maskOffset -= nin
            if let d = dropout {
                for r in 0..<m { for k in 0..<nin { gx[r * nin + k] *= d[r * dw + maskOffset + k] } }
            }
            if i > 0 && s.linears[i - 1].relu {
                let a = Z[i - 1]
                for k in 0..<(m * nin) where a[k] <= 0 { gx[k] = 0 }
            }
            g = gx
            p?.lap(.layout)
        }
        // Conv stages over the part, last to first, band by band; g's rows are dL/d(pooled output of the last stage).
        let D = (0..<L).map { dp[$0].reserve(m * stageFloats($0)) }
        g.withUnsafeBufferPointer { D[L - 1].update(from: $0.baseAddress!, count: m * fin[0]) }
        let foldedGrad = s.inChannels > 1
        let kk0 = s.convs[0].k * s.convs[0].k
        let DW0 = dWfolded.reserve(s.convs[0].out * kk0)
        if foldedGrad { DW0.update(repeating: 0, count: s.convs[0].out * kk0) }
        for l in stride(from: L - 1, through: 0, by: -1) {
            let dW = l == 0 && foldedGrad ? DW0 : grad(2 * l), dx = l > 0 ? D[l - 1] : nil
            p?.layer = convStage(l)
            if let f = net.transformed[l] {
                f.backwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l), outPad: pad(l + 1),
                                 dPooled: D[l], pooled: P[l], argmax: A[l], dW: dW, db: grad(2 * l + 1), dx: dx, scratch: fft, profile: p)
            } else if net.convs[l].runsDirect && dx == nil {
                net.convs[l].directBackwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l),
                                                  outPad: pad(l + 1), dPooled: D[l], pooled: P[l], argmax: A[l], dW: dW,
                                                  db: grad(2 * l + 1), profile: p)
            } else {
                net.convs[l].backwardPooled(stageInput(l), batch: m, h: geo[l].side, w: geo[l].side, padding: pad(l), outPad: pad(l + 1),
                                            dPooled: D[l], pooled: P[l], argmax: A[l], dW: dW, db: grad(2 * l + 1), dx: dx, scratch: bands,
                                            profile: p)
            }
        }
        if foldedGrad {
            // Every input channel sees the same image, so each gets the folded weight's gradient.
            let cin = s.inChannels, g0 = grad(0)
            for o in 0..<s.convs[0].out { for ch in 0..<cin { for q in 0..<kk0 {
                g0[(o * cin + ch) * kk0 + q] = DW0[o * kk0 + q]
            } } }
        }
    }
}
