import CKernels

/// conv1's conv → ReLU → 2×2 max pool stage as a direct convolution in C (`bm_direct_pool_bias_relu`,
/// `bm_direct_pool_gradients`): one input channel makes the banded path's sgemm K = k² = 49 deep and M = cout = 16
/// tall, a shape sgemm runs at half its speed, behind an im2col that copies the input k² times. The direct kernel
/// reads the padded input as it lies and writes the pooled output; its weight gradient visits only the conv outputs
/// the pools routed a gradient to (one per window), a quarter of the dense products. Same arguments, layouts and
/// results as `forwardPooled` / `backwardPooled` (within float rounding), but no input gradient: conv1 needs none.
extension ConvLayer {
    /// Layers the direct kernels take: one input channel (conv1 with its identical channels folded), k ≤ 8, output
    /// channels in groups of four.
    public var runsDirect: Bool { cin == 1 && k <= 8 && cout % 4 == 0 }

    /// `forwardPooled` by the direct kernel (`runsDirect` layers).
    func directForwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                             out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>? = nil,
                             profile: EngineProfile? = nil) {
        precondition(runsDirect, "directForwardPooled: one input channel, k ≤ 8, cout a multiple of 4")
        let g = PooledConvGeometry(self, h: h, w: w, padding: p, outPad: outPad)
        if outPad > 0 { out.update(repeating: 0, count: batch * cout * g.outPlane) }
        profile?.lap(.alloc)
        let first = outPad * g.outW + outPad
        weight.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
            bm_direct_pool_bias_relu(x, Int32(batch), Int32(g.hp2), Int32(g.wp2), Int32(k), Int32(cout), wp.baseAddress!,
                                     bp.baseAddress!, Int32(g.ph), Int32(g.pw), out + first, g.outPlane, g.outW,
                                     argmax.map { $0 + first })
        } }
        // The conv rows the pools read, and the pools' compares.
        profile?.lap(.direct, flops: 2 * Double(batch * cout * k * k * 4 * g.ph * g.pw) + 4 * Double(batch * cout * g.ph * g.pw))
    }

    /// `backwardPooled` by the direct kernel without the input gradient: dW += and db += the batch's gradients.
    func directBackwardPooled(_ x: UnsafePointer<Float>, batch: Int, h: Int, w: Int, padding p: Int, outPad: Int = 0,
                              dPooled: UnsafePointer<Float>, pooled: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                              dW: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, profile: EngineProfile? = nil) {
        precondition(runsDirect, "directBackwardPooled: one input channel, k ≤ 8, cout a multiple of 4")
        let g = PooledConvGeometry(self, h: h, w: w, padding: p, outPad: outPad)
        let first = outPad * g.outW + outPad
        bm_direct_pool_gradients(x, Int32(batch), Int32(g.hp2), Int32(g.wp2), Int32(k), Int32(cout), dPooled + first,
                                 pooled + first, argmax + first, Int32(g.ph), Int32(g.pw), g.outPlane, g.outW, dW, db)
        // One routed gradient per pool window: k² multiply-adds each.
        profile?.lap(.direct, flops: 2 * Double(batch * cout * k * k * g.ph * g.pw))
    }
}
