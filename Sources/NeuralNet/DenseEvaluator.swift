import Foundation

/// `dense` mode: the classifier as a stride-1 fully convolutional net with dilations 1, 2, 4, 8, 16 (each maxpool
/// becomes a stride-1 pool; later layers dilate by the product of the strides skipped; fc1 becomes a 6×6 conv of
/// dilation 16; fc2/fc3 1×1 convs). Output (i, j) of a tile equals the pad-0 net on the 134×134 window whose
/// top-left corner is input (S·i, S·j), i.e. the window of pixel (S·i + 67, S·j + 67) of the tile.
///
/// An output stride S = 2^k keeps the first k pools strided (as in the original net) and dilates the rest, giving
/// the same values on an S-spaced grid for 1/S² of the work; S = 16 is the plain fully-convolutional net.
public struct DenseEvaluator: Sendable {
    public let model: AreaClassifier
    public static let halo = 67
    public static let strides = [1, 2, 4, 8, 16]
    /// Floats of im2col workspace per band (bounds the engine's memory; 8 Mi floats = 32 MiB).
    public var workspaceFloats = 8 << 20

    /// How fc1 (96% of the work) is computed: one sgemm over im2col bands, or polyphase 16×16 FFTs (default:
    /// 3.4× faster here at stride 1, equal to the reference within the same 1e-4 tolerance; costs 151 MB of weights).
    public enum FC1Algorithm: String, Sendable, CaseIterable { case gemm, fft }
    public let fc1Algorithm: FC1Algorithm
    let fc1FFT: PolyphaseFFTConv?

    public init(model: AreaClassifier, fc1: FC1Algorithm = .fft) {
        self.model = model; self.fc1Algorithm = fc1
        fc1FFT = fc1 == .fft ? PolyphaseFFTConv(model.fc1) : nil
    }

    /// Peak bytes one worker holds for a tile of `outputs`² output pixels at stride `S`: the tile, the conv layers'
    /// output and pooled buffers (each kept at its largest layer's size and reused from tile to tile), the im2col
    /// workspace (which fc1's FFT scratch reuses), and the outputs (fc1 → ReLU → fc2 are fused per group of FFT
    /// blocks: no 1024-channel tile buffer). Counted by replaying the forward pass's shapes; the pipeline's memory
    /// budget uses it and its test checks it against the process's measured peak RSS.
    public func workspaceBytes(outputs n: Int, stride S: Int) -> Int {
        let m = model
        var side = Self.inputSize(outputs: n, stride: S)
        let tile = side * side   // the caller's tile stays alive throughout
        var strided = S.trailingZeroBitCount, dil = 1
        var conv = 0, pooled = 0, col = 0
        for layer in [m.conv1, m.conv2, m.conv3, m.conv4] {
            let o = side - dil * (layer.k - 1)
            col = max(col, min(workspaceFloats, layer.cin * layer.k * layer.k * o * o))
            let (p, _) = MaxPool.outputSize(o, o, stride: strided > 0 ? 2 : 1, dilation: dil)
            conv = max(conv, layer.cout * o * o); pooled = max(pooled, layer.cout * p * p)
            side = p
            if strided > 0 { strided -= 1 } else { dil *= 2 }
        }
        let o = side - dil * 5
        var outputs = 70 * o * o
        if fc1FFT != nil {
            col = max(col, PolyphaseFFTConv.scratchFloats)
        } else {
            col = max(col, min(workspaceFloats, 128 * 36 * o * o))
            outputs += 1024 * o * o
        }
        return 4 * (tile + col + conv + pooled + outputs)
    }

    /// Input tile side needed for `outputs` output pixels along an axis at stride `s`.
    public static func inputSize(outputs n: Int, stride s: Int) -> Int { s * (n - 1) + AreaClassifier.windowSize }

    public struct Output: Sendable {
        public var height: Int, width: Int
        /// [64, height, width]
        public var latents: [Float]
        /// [6, height, width]
        public var logits: [Float]
    }

    /// Buffers one worker reuses from tile to tile (allocated once, at the first tile's sizes, never zero-filled:
    /// every kernel writes all it later reads). `forward` borrows one from `workspaces` per call, so concurrent
    /// callers (predict's workers) each keep one for the evaluator's lifetime: what the memory plan counts per worker.
    final class Workspace {
        var conv = [Float](), pooled = [Float](), col = [Float]()
        /// `buffer` with room for `n` floats (contents undefined).
        static func reserve(_ buffer: inout [Float], _ n: Int) {
            if buffer.count < n { buffer = [Float](unsafeUninitializedCapacity: n) { _, c in c = n } }
        }
    }

    /// Idle workspaces, one per caller that has finished with it.
    final class WorkspacePool: @unchecked Sendable {
        private let lock = NSLock()
        private var idle: [Workspace] = []
        func take() -> Workspace { lock.lock(); defer { lock.unlock() }; return idle.popLast() ?? Workspace() }
        func give(_ w: Workspace) { lock.lock(); idle.append(w); lock.unlock() }
    }
    let workspaces = WorkspacePool()

    /// Runs the dense net on one tile (single channel, gray/255, CHW with C = 1) of `th × tw` pixels.
    /// `th` and `tw` must be S·(n−1) + 134 for some n ≥ 1.
    public func forward(tile: [Float], th: Int, tw: Int, stride S: Int, profile p: EngineProfile? = nil) throws -> Output {
        let ws = workspaces.take()
        defer { workspaces.give(ws) }
        return try forward(tile: tile, th: th, tw: tw, stride: S, workspace: ws, profile: p)
    }

    func forward(tile: [Float], th: Int, tw: Int, stride S: Int, workspace ws: Workspace, profile p: EngineProfile?) throws -> Output {
        guard Self.strides.contains(S) else { throw NeuralNetError.input("output stride \(S) is not one of \(Self.strides)") }
        guard th >= 134, tw >= 134, (th - 134) % S == 0, (tw - 134) % S == 0, tile.count == th * tw else {
            throw NeuralNetError.input("dense tile \(th)×\(tw) is not S·(n−1)+134 for stride \(S)")
        }
        let m = model
        var strided = S.trailingZeroBitCount   // pools that keep stride 2
        var dil = 1
        var h = th, w = tw
        for (i, layer) in [m.conv1, m.conv2, m.conv3, m.conv4].enumerated() {
            p?.layer = EngineProfile.Layer(rawValue: EngineProfile.Layer.conv1.rawValue + i)!
            let (ho, wo) = layer.outputSize(h, w, dilation: dil, padding: 0)
            let s = strided > 0 ? 2 : 1
            let (hp, wp) = MaxPool.outputSize(ho, wo, stride: s, dilation: dil)
            Workspace.reserve(&ws.conv, layer.cout * ho * wo)
            p?.lap(.alloc)
            // conv: the tile or the previous pooled buffer → ws.conv; pool: ws.conv → ws.pooled.
            ws.conv.withUnsafeMutableBufferPointer { yo in
                func run(_ xi: UnsafePointer<Float>) {
                    layer.forward(xi, h: h, w: w, dilation: dil, padding: 0, relu: false, out: yo.baseAddress!,
                                  workspace: &ws.col, workspaceFloats: workspaceFloats, profile: p)
                }
                if i == 0 { tile.withUnsafeBufferPointer { run($0.baseAddress!) } }
                else { ws.pooled.withUnsafeBufferPointer { run($0.baseAddress!) } }
            }
            Workspace.reserve(&ws.pooled, layer.cout * hp * wp)   // only now: it held this conv's input
            p?.lap(.alloc)
            ws.conv.withUnsafeBufferPointer { yi in ws.pooled.withUnsafeMutableBufferPointer { xo in
                MaxPool.forward(yi.baseAddress!, channels: layer.cout, h: ho, w: wo, stride: s, dilation: dil, relu: true, out: xo.baseAddress!)
            } }
            p?.lap(.pool, flops: 4 * Double(layer.cout * hp * wp))   // three max and the ReLU floor per output
            if strided > 0 { strided -= 1 } else { dil *= 2 }
            h = hp; w = wp
        }
        func conv(_ layer: ConvLayer, _ input: UnsafePointer<Float>, relu: Bool, _ stage: EngineProfile.Layer) -> [Float] {
            p?.layer = stage
            let (ho, wo) = layer.outputSize(h, w, dilation: dil, padding: 0)
            var y = [Float](unsafeUninitializedCapacity: layer.cout * ho * wo) { _, n in n = layer.cout * ho * wo }
            p?.lap(.alloc)
            y.withUnsafeMutableBufferPointer { yo in
                layer.forward(input, h: h, w: w, dilation: dil, padding: 0, relu: relu, out: yo.baseAddress!,
                              workspace: &ws.col, workspaceFloats: workspaceFloats, profile: p)
            }
            return y
        }
        let latents: [Float]
        if let fft = fc1FFT {
            p?.layer = .fc1
            let n = m.fc2.cout * (h - dil * 5) * (w - dil * 5)
            var fused = [Float](unsafeUninitializedCapacity: n) { _, c in c = n }
            p?.lap(.alloc)
            ws.pooled.withUnsafeBufferPointer { xi in fused.withUnsafeMutableBufferPointer { lo in
                fft.forward(xi.baseAddress!, h: h, w: w, dilation: dil, then: m.fc2, out: lo.baseAddress!, workspace: &ws.col, profile: p)
            } }
            h -= dil * 5; w -= dil * 5
            latents = fused
        } else {
            let hidden = ws.pooled.withUnsafeBufferPointer { conv(m.fc1, $0.baseAddress!, relu: true, .fc1) }
            h -= dil * 5; w -= dil * 5
            latents = hidden.withUnsafeBufferPointer { conv(m.fc2, $0.baseAddress!, relu: false, .fc2) }
        }
        let logits = latents.withUnsafeBufferPointer { conv(m.fc3, $0.baseAddress!, relu: false, .fc3) }
        p?.layer = .tile
        return Output(height: h, width: w, latents: latents, logits: logits)
    }

    /// Evaluates an in-memory uint8 plane at the pixels rows r0, r0+S, … < r1 and cols likewise, tile by tile
    /// (`tile` output pixels per side), zero outside the image. `parallelTiles` tiles run at once, each with
    /// single-threaded BLAS; with 1, BLAS uses `blasThreads`. Defaults are what measured fastest here
    /// (`brainmap bench cnn`): FFT fc1 → 176-pixel tiles (16 × 11, whole FFT blocks), one per core (21.9k px/s vs
    /// 17.3k with 2 BLAS threads); sgemm fc1 → 128-pixel tiles, BLAS threads (6.2k vs 6.1k).
    public func evaluate(plane: [UInt8], height: Int, width: Int, rows: Range<Int>, cols: Range<Int>, stride S: Int,
                         tile: Int? = nil, parallelTiles: Int? = nil,
                         blasThreads: Int = ProcessInfo.processInfo.activeProcessorCount, profile: EngineProfile? = nil) throws -> Output {
        let tile = tile ?? (fc1Algorithm == .fft ? 176 : 128)
        let parallelTiles = parallelTiles ?? (fc1Algorithm == .fft ? blasThreads : 1)
        let oh = (rows.count + S - 1) / S, ow = (cols.count + S - 1) / S
        let collector = Collector(Output(height: oh, width: ow, latents: .init(repeating: 0, count: 64 * oh * ow),
                                         logits: .init(repeating: 0, count: 6 * oh * ow)))
        // Output origin and size of every tile.
        let tiles: [(Int, Int, Int, Int)] = stride(from: 0, to: oh, by: tile).flatMap { ty in
            stride(from: 0, to: ow, by: tile).map { tx in (ty, tx, min(tile, oh - ty), min(tile, ow - tx)) }
        }
        let workers = max(1, min(parallelTiles, tiles.count))
        BLAS.setThreads(workers > 1 ? 1 : blasThreads)
        defer { BLAS.setThreads(blasThreads) }
        let started = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let p = profile == nil ? nil : EngineProfile()
            p?.threads = workers > 1 ? 1 : blasThreads
            p?.start()
            let workspace = workspaces.take()
            defer { workspaces.give(workspace) }
            var i = worker
            while i < tiles.count {
                let (ty, tx, nh, nw) = tiles[i]
                let th = Self.inputSize(outputs: nh, stride: S), tw = Self.inputSize(outputs: nw, stride: S)
                let y0 = rows.lowerBound + ty * S - Self.halo, x0 = cols.lowerBound + tx * S - Self.halo
                let input = Self.extract(plane: plane, height: height, width: width, y0: y0, x0: x0, th: th, tw: tw)
                p?.lap(.layout)
                do { collector.place(try forward(tile: input, th: th, tw: tw, stride: S, workspace: workspace, profile: p), at: ty, tx) }
                catch { collector.fail(error) }
                p?.lap(.layout)
                i += workers
            }
            if let p { collector.merge(p, into: profile!) }
        }
        if let profile {
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            profile.addIdle(seconds: wall * Double(workers > 1 ? workers : blasThreads) - collector.busy)
        }
        if let failure = collector.failure { throw failure }
        return collector.out
    }

    /// Gathers tiles from concurrent workers.
    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        var out: Output
        var failure: Error?
        init(_ o: Output) { out = o }
        func place(_ r: Output, at ty: Int, _ tx: Int) { lock.lock(); DenseEvaluator.place(r, into: &out, at: ty, tx); lock.unlock() }
        func fail(_ e: Error) { lock.lock(); failure = e; lock.unlock() }
        /// Thread-seconds the merged worker profiles charged.
        var busy = 0.0
        func merge(_ p: EngineProfile, into total: EngineProfile) { lock.lock(); busy += p.busySeconds; total.merge(p); lock.unlock() }
    }

    /// A th×tw window of a plane as gray/255, zero outside the image.
    public static func extract(plane: [UInt8], height: Int, width: Int, y0: Int, x0: Int, th: Int, tw: Int) -> [Float] {
        var t = [Float](repeating: 0, count: th * tw)
        plane.withUnsafeBufferPointer { src in
            for y in 0..<th {
                let iy = y0 + y
                guard iy >= 0 && iy < height else { continue }
                let xa = max(0, -x0), xb = min(tw, width - x0)
                guard xa < xb else { continue }
                for x in xa..<xb { t[y * tw + x] = Float(src[iy * width + x0 + x]) * (1 / 255) }
            }
        }
        return t
    }

    static func place(_ r: Output, into out: inout Output, at ty: Int, _ tx: Int) {
        for (src, dst, ch) in [(r.latents, \Output.latents, 64), (r.logits, \Output.logits, 6)] {
            for c in 0..<ch { for y in 0..<r.height {
                let so = (c * r.height + y) * r.width, d = (c * out.height + ty + y) * out.width + tx
                out[keyPath: dst].withUnsafeMutableBufferPointer { o in
                    src.withUnsafeBufferPointer { s in (o.baseAddress! + d).update(from: s.baseAddress! + so, count: r.width) }
                }
            } }
        }
    }
}
