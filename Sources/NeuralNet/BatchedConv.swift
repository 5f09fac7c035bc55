/// A conv → ReLU → 2×2 max pool (stride 2) stage over a batch of images, band by band: each band's im2col, its
/// sgemm and its bias + ReLU + pool run back to back while the band is in L2, and a band's columns may run on
/// from one image into the next, so the small late layers (conv4: 144 outputs per image) still get a wide sgemm.
/// Nothing of the size of a whole conv output is ever written: only the pooled result leaves the band.
///
/// Layout: images one after another, each CHW with its zero padding stored: the input of a layer with padding p is
/// [batch][cin][h + 2p][w + 2p], and a stage writes its pooled output with the next layer's padding around it. The
/// convolution then runs "wide": an output row spans the whole padded width w + 2p, the last k − 1 columns of which
/// are never pooled. What that buys: im2col's row (c, ky, kx) over a band of output rows is one contiguous run of
/// the padded input, a single copy, where a row-by-row im2col makes a short copy and two zero fills per output row.
/// Only the conv rows the pool reads are computed (the last row of an odd-height output is not).
public final class ConvBandScratch {
    /// Floats of im2col per band: 64 Ki floats (256 KiB) leaves half of a 512 KiB L2 for the band's sgemm output
    /// and OpenBLAS's packed panels.
    public static let defaultColFloats = 64 << 10
    let colFloats: Int
    let col = Scratch<Float>(), y = Scratch<Float>(), dcol = Scratch<Float>()

    public init(colFloats: Int = ConvBandScratch.defaultColFloats) { self.colFloats = max(1, colFloats) }

    /// Pooled rows (pairs of conv rows) per band for K im2col rows of `pitch` columns, at least one.
    func pairsPerBand(K: Int, pitch: Int) -> Int { max(1, colFloats / (K * 2 * pitch)) }

    /// Floats this scratch holds at most for a layer (im2col, the sgemm output, and in training the im2col gradient)
    /// whose padded input is `pitch` wide.
    static func floats(cin: Int, cout: Int, k: Int, pitch: Int, colFloats: Int = defaultColFloats, training: Bool) -> Int {
        let K = cin * k * k
        let n = max(1, colFloats / (K * 2 * pitch)) * 2 * pitch
        return K * n * (training ? 2 : 1) + cout * n
    }
}

/// The geometry of one stage on padded, wide rows, and its bands.
struct PooledConvGeometry {
    let cin: Int, cout: Int, k: Int
    /// Padded input side (h + 2p, w + 2p); conv output rows; pooled output; the padding around the pooled output.
    let hp2: Int, wp2: Int, ho: Int, ph: Int, pw: Int, outPad: Int
    var K: Int { cin * k * k }
    var inPlane: Int { hp2 * wp2 }
    var outH: Int { ph + 2 * outPad }
    var outW: Int { pw + 2 * outPad }
    var outPlane: Int { outH * outW }

    init(_ layer: ConvLayer, h: Int, w: Int, padding p: Int, outPad: Int) {
        cin = layer.cin; cout = layer.cout; k = layer.k
        hp2 = h + 2 * p; wp2 = w + 2 * p
        let (ho, wo) = layer.outputSize(h, w, dilation: 1, padding: p)
        self.ho = ho
        (ph, pw) = MaxPool.outputSize(ho, wo, stride: 2, dilation: 1)
        self.outPad = outPad
    }

    /// One band: pooled rows [py0, py0 + rows) of `image`, whose 2·rows wide conv rows start at `column`.
    typealias Segment = (image: Int, py0: Int, rows: Int, column: Int)

    /// The bands covering `batch` images, `pairs` pooled rows per band, flattened over (image, pooled row); columns
    /// per band = 2 · wp2 per pooled row.
    func bands(batch: Int, pairs: Int) -> [(segments: [Segment], columns: Int)] {
        var out: [([Segment], Int)] = [], q = 0
        let total = batch * ph
        while q < total {
            let end = min(total, q + pairs)
            var segs: [Segment] = [], col = 0, r = q
            while r < end {
                let b = r / ph, py0 = r % ph, rows = min(ph - py0, end - r)
                segs.append((b, py0, rows, col))
                col += 2 * rows * wp2; r += rows
            }
            out.append((segs, col))
            q = end
        }
        return out
    }

    /// Calls body(col offset, input offset, floats to copy, floats in the row) for every im2col row (c, ky, kx) of a
    /// segment: that row is the padded input from (2·py0 + ky, kx) on, 2·rows·wp2 floats, clipped at the channel
    /// plane's end (the clipped columns are ones no pool reads).
    @inline(__always) private func forEachRow(_ s: Segment, ld: Int, _ body: (Int, Int, Int, Int) -> Void) {
        let count = 2 * s.rows * wp2, image = s.image * cin * inPlane
        var r = 0
        for c in 0..<cin { for ky in 0..<k { for kx in 0..<k {
            let start = (2 * s.py0 + ky) * wp2 + kx
            body(r * ld + s.column, image + c * inPlane + start, min(count, inPlane - start), count)
            r += 1
        } } }
    }

    /// Wide im2col of one segment (zeros where a row is clipped).
    func im2col(_ x: UnsafePointer<Float>, _ s: Segment, col: UnsafeMutablePointer<Float>, ld: Int) {
        forEachRow(s, ld: ld) { o, i, avail, count in
            (col + o).update(from: x + i, count: avail)
            if avail < count { (col + o + avail).update(repeating: 0, count: count - avail) }
        }
    }

    /// The adjoint of `im2col`: dx[input offset + j] += dcol[col offset + j] over each row of the segment.
    func col2im(_ dcol: UnsafePointer<Float>, _ s: Segment, dx: UnsafeMutablePointer<Float>, ld: Int) {
        forEachRow(s, ld: ld) { o, i, avail, _ in
            let src = dcol + o, dst = dx + i
            for j in 0..<avail { dst[j] += src[j] }
        }
    }

    /// Offset of pooled output (image, channel, row, column) in the padded output layout.
    @inline(__always) func outOffset(_ b: Int, _ c: Int, _ py: Int) -> Int {
        (b * cout + c) * outPlane + (py + outPad) * outW + outPad
    }
}

extension ConvLayer {
    /// pooled[b, c] = maxpool₂(ReLU(conv(x[b]) + bias)) for every image b of the batch (stride-1 conv, dilation 1).
    /// `x`: [batch][cin][h + 2·padding][w + 2·padding], its padding zeros stored; `out`: [batch][cout][ph + 2·outPad]
    /// [pw + 2·outPad], written whole (its border zeroed). With `argmax`, also records per pooled output (same
    /// layout) which of its 2×2 window (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; the first of
    /// equals, as PyTorch) held the maximum.
    ///
    /// max(a + b, c + b) = max(a, c) + b exactly (rounding is monotonic), so adding the bias after the max gives the
    /// same floats as adding it before, for a quarter of the additions.
    /// The bands both passes walk (same bands, same layouts) and the scratch for a band's im2col columns and its
    /// conv output (or gradient), sized for the widest band.
    private func bandPlan(batch: Int, h: Int, w: Int, padding p: Int, outPad: Int, scratch: ConvBandScratch)
        -> (PooledConvGeometry, [(segments: [PooledConvGeometry.Segment], columns: Int)], Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let g = PooledConvGeometry(self, h: h, w: w, padding: p, outPad: outPad)
        let bands = g.bands(batch: batch, pairs: scratch.pairsPerBand(K: g.K, pitch: g.wp2))
        let maxColumns = bands.map(\.columns).max() ?? 0
        return (g, bands, maxColumns, scratch.col.reserve(g.K * maxColumns), scratch.y.reserve(cout * maxColumns))
    }

    func forwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                       out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>? = nil,
                       scratch: ConvBandScratch, profile: EngineProfile? = nil) {
        let (g, bands, _, col, y) = bandPlan(batch: batch, h: h, w: w, padding: p, outPad: outPad, scratch: scratch)
        let K = g.K, W2 = g.wp2
        if outPad > 0 { out.update(repeating: 0, count: batch * cout * g.outPlane) }
        profile?.lap(.alloc)
        weight.withUnsafeBufferPointer { wpt in bias.withUnsafeBufferPointer { bp in
            for band in bands {
                let n = band.columns
                for s in band.segments { g.im2col(x, s, col: col, ld: n) }
                profile?.lap(.layout)
                BLAS.gemm(m: cout, n: n, k: K, a: wpt.baseAddress!, lda: K, b: col, ldb: n, c: y, ldc: n)
                profile?.lap(.gemm, flops: 2 * Double(cout * K * n))
                var pooledRows = 0
                for s in band.segments {
                    pooledRows += s.rows
                    for c in 0..<cout {
                        let b = bp[c]
                        for r in 0..<s.rows {
                            let r0 = y + c * n + s.column + 2 * r * W2, r1 = r0 + W2
                            let o = g.outOffset(s.image, c, s.py0 + r)
                            let dst = out + o
                            if let argmax {
                                let arg = argmax + o
                                for px in 0..<g.pw {
                                    let x0 = 2 * px
                                    var m = r0[x0], a: UInt8 = 0
                                    if r0[x0 + 1] > m { m = r0[x0 + 1]; a = 1 }
                                    if r1[x0] > m { m = r1[x0]; a = 2 }
                                    if r1[x0 + 1] > m { m = r1[x0 + 1]; a = 3 }
                                    dst[px] = max(m + b, 0); arg[px] = a
                                }
                            } else {
                                for px in 0..<g.pw {
                                    let x0 = 2 * px
                                    dst[px] = max(max(max(r0[x0], r0[x0 + 1]), max(r1[x0], r1[x0 + 1])) + b, 0)
                                }
                            }
                        }
                    }
                }
                profile?.lap(.pool, flops: 4 * Double(cout * g.pw * pooledRows))
            }
        } }
    }

    /// The backward pass of `forwardPooled`, band by band with the same bands and layouts: from dL/d(pooled) of
    /// every image, dW += dy·im2col(x)ᵀ and db += Σ dy over the batch, and, when `dx` is given (x's padded layout),
    /// dx = col2im(Wᵀ·dy), overwritten (its padding gets the gradient of the zeros there: ignore it). dy = dL/d(conv
    /// output) routes each pooled gradient to the window position `argmax` recorded, if the pooled value was
    /// positive (else the ReLU blocked it).
    func backwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                        dPooled: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                        dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                        scratch: ConvBandScratch, profile: EngineProfile? = nil) {
        let (g, bands, maxColumns, col, dy) = bandPlan(batch: batch, h: h, w: w, padding: p, outPad: outPad, scratch: scratch)
        let K = g.K, W2 = g.wp2
        let dcol = dx == nil ? nil : scratch.dcol.reserve(K * maxColumns)
        dx?.update(repeating: 0, count: batch * cin * g.inPlane)
        profile?.lap(.alloc)
        weight.withUnsafeBufferPointer { wpt in
            for band in bands {
                let n = band.columns
                dy.update(repeating: 0, count: cout * n)
                // db sums the gradients routed through (a quarter of dy's entries at most), while routing them: a
                // pass over all of dy is a serial float sum (Swift keeps its order), 0.3 ms a patch for conv1.
                for s in band.segments {
                    for c in 0..<cout {
                        var sum: Float = 0
                        for r in 0..<s.rows {
                            let o = g.outOffset(s.image, c, s.py0 + r)
                            let gr = dPooled + o, v = pooled + o, a = argmax + o
                            let r0 = dy + c * n + s.column + 2 * r * W2
                            for px in 0..<g.pw where v[px] > 0 {
                                let q = Int(a[px])
                                r0[(q >> 1) * W2 + 2 * px + (q & 1)] = gr[px]
                                sum += gr[px]
                            }
                        }
                        db[c] += sum
                    }
                    g.im2col(x, s, col: col, ld: n)
                }
                profile?.lap(.layout)
                BLAS.gemm(m: cout, n: K, k: n, a: dy, lda: n, b: col, ldb: n, c: dW, ldc: K, transB: true, accumulate: true)
                profile?.lap(.gemm, flops: 2 * Double(cout * K * n))
                guard let dx, let dcol else { continue }
                BLAS.gemm(m: K, n: n, k: cout, a: wpt.baseAddress!, lda: K, b: dy, ldb: n, c: dcol, ldc: n, transA: true)
                profile?.lap(.gemm, flops: 2 * Double(cout * K * n))
                for s in band.segments { g.col2im(dcol, s, dx: dx, ld: n) }
                profile?.lap(.layout)
            }
        }
    }
}
