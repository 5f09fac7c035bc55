import Foundation

/// Adam (Kingma & Ba) with PyTorch's defaults and PyTorch's arithmetic (torch.optim.Adam, single-tensor path, no
/// weight decay, no amsgrad): m ← m + (1−β1)(g − m); v ← β2·v + (1−β2)·g²; p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε).
public struct Adam: Sendable {
    public var lr: Float, beta1: Float, beta2: Float, eps: Float
    /// Steps taken so far (PyTorch's `state["step"]`).
    public var step: Int
    public var m: [[Float]], v: [[Float]]

    public init(sizes: [Int], lr: Float = 1e-4, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; step = 0
        m = sizes.map { [Float](repeating: 0, count: $0) }; v = m
    }

    /// One step over all tensors, on `threads` threads (tensors of ≥ 128 K elements split between them; each element's
    /// arithmetic is the same on any count: fc1's 4.7 M weights dominate a step).
    public mutating func update(_ parameters: inout [Tensor], gradients: [[Float]], threads: Int = 1) {
        precondition(parameters.count == gradients.count && gradients.count == m.count)
        step += 1
        // The bias corrections in double, as Python computes them, then used as float scalars.
        let bc1 = 1 - Foundation.pow(Double(beta1), Double(step)), bc2 = 1 - Foundation.pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / bc1), bc2Sqrt = Float(bc2.squareRoot())
        let b2 = beta2, e = eps, w1 = 1 - beta1, w2 = 1 - beta2
        for i in parameters.indices {
            parameters[i].data.withUnsafeMutableBufferPointer { p in
                m[i].withUnsafeMutableBufferPointer { mb in v[i].withUnsafeMutableBufferPointer { vb in
                    gradients[i].withUnsafeBufferPointer { g in
                        guard !p.isEmpty else { return }
                        let P = UncheckedSendable(p.baseAddress!), Mb = UncheckedSendable(mb.baseAddress!)
                        let Vb = UncheckedSendable(vb.baseAddress!), Gb = UncheckedSendable(g.baseAddress!)
                        concurrentRanges(p.count, threads: threads) { range in
                            let p = P.value, mb = Mb.value, vb = Vb.value, g = Gb.value
                            for j in range {
                                let gj = g[j]
                                mb[j] += w1 * (gj - mb[j])
                                vb[j] = vb[j] * b2 + w2 * gj * gj
                                p[j] -= stepSize * (mb[j] / (vb[j].squareRoot() / bc2Sqrt + e))
                            }
                        }
                    }
                } }
            }
        }
    }
}
