/// The layer primitives of the classifier, over single images in CHW layout. Convolutions are im2col + one sgemm per
/// band of output rows, so the im2col workspace stays under `workspaceFloats` whatever the image size.
public struct ConvLayer: Sendable {
    /// Weights as a [cout, cin·k·k] matrix (PyTorch's [cout, cin, k, k] flattened), bias [cout].
    public let weight: [Float]
    public let bias: [Float]
    public let cin: Int, cout: Int, k: Int

    public init(weight: [Float], bias: [Float], cin: Int, cout: Int, k: Int) {
        precondition(weight.count == cout * cin * k * k && bias.count == cout)
        self.weight = weight; self.bias = bias; self.cin = cin; self.cout = cout; self.k = k
    }

    public func outputSize(_ h: Int, _ w: Int, dilation d: Int, padding p: Int) -> (Int, Int) {
        (h + 2 * p - d * (k - 1), w + 2 * p - d * (k - 1))
    }

    /// out[cout, ho, wo] = conv(input[cin, h, w]) + bias, optionally ReLU'd. `out` must hold cout·ho·wo floats.
    public func forward(_ input: UnsafePointer<Float>, h: Int, w: Int, dilation d: Int, padding p: Int, relu: Bool,
                        out: UnsafeMutablePointer<Float>, workspace: inout [Float], workspaceFloats: Int = 8 << 20,
                        profile: EngineProfile? = nil) {
        let (ho, wo) = outputSize(h, w, dilation: d, padding: p)
        let K = cin * k * k
        let plane = ho * wo
        if k == 1 && p == 0 {
            weight.withUnsafeBufferPointer { wp in
                BLAS.gemm(m: cout, n: plane, k: K, a: wp.baseAddress!, lda: K, b: input, ldb: plane, c: out, ldc: plane)
            }
            profile?.lap(.gemm, flops: 2 * Double(cout * K * plane))
        } else {
            let rowsPerBand = max(1, min(ho, workspaceFloats / max(1, K * wo)))
            if workspace.count < K * rowsPerBand * wo { workspace = .init(repeating: 0, count: K * rowsPerBand * wo) }
            profile?.lap(.alloc)
            workspace.withUnsafeMutableBufferPointer { ws in
                weight.withUnsafeBufferPointer { wp in
                    var y0 = 0
                    while y0 < ho {
                        let rows = min(rowsPerBand, ho - y0)
                        im2col(input, h: h, w: w, y0: y0, rows: rows, wo: wo, dilation: d, padding: p, col: ws.baseAddress!)
                        profile?.lap(.layout)
                        BLAS.gemm(m: cout, n: rows * wo, k: K, a: wp.baseAddress!, lda: K, b: ws.baseAddress!, ldb: rows * wo,
                                  c: out + y0 * wo, ldc: plane)
                        profile?.lap(.gemm, flops: 2 * Double(cout * K * rows * wo))
                        y0 += rows
                    }
                }
            }
        }
        addBias(out, plane: plane, relu: relu)
        profile?.lap(.bias, flops: Double(cout * plane * (relu ? 2 : 1)))
    }

    private func addBias(_ out: UnsafeMutablePointer<Float>, plane: Int, relu: Bool) {
        for c in 0..<cout {
            let b = bias[c]
            let p = out + c * plane
            if relu { for i in 0..<plane { p[i] = max(p[i] + b, 0) } } else { for i in 0..<plane { p[i] += b } }
        }
    }

    /// Fills col[(c,ky,kx), (row, x)] for output rows y0..<y0+rows; zeros where the kernel reads outside the input.
    func im2col(_ input: UnsafePointer<Float>, h: Int, w: Int, y0: Int, rows: Int, wo: Int, dilation d: Int,
                        padding p: Int, col: UnsafeMutablePointer<Float>) {
        let n = rows * wo
        var r = 0
        for c in 0..<cin {
            let src = input + c * h * w
            for ky in 0..<k {
                for kx in 0..<k {
                    let dst = col + r * n
                    let dx = kx * d - p
                    // Valid output columns: 0 <= ox + dx < w.
                    let xa = max(0, -dx), xb = min(wo, w - dx)
                    for oy in 0..<rows {
                        let iy = y0 + oy + ky * d - p
                        let row = dst + oy * wo
                        if iy < 0 || iy >= h || xa >= xb {
                            row.update(repeating: 0, count: wo)
                            continue
                        }
                        if xa > 0 { row.update(repeating: 0, count: xa) }
                        (row + xa).update(from: src + iy * w + xa + dx, count: xb - xa)
                        if xb < wo { (row + xb).update(repeating: 0, count: wo - xb) }
                    }
                    r += 1
                }
            }
        }
    }
}

/// 2×2 max pooling with a stride (2 in the original net, 1 in the dense net) and a dilation, fused with the ReLU that
/// precedes it in the network (ReLU and max commute).
public enum MaxPool {
    public static func outputSize(_ h: Int, _ w: Int, stride s: Int, dilation d: Int) -> (Int, Int) {
        ((h - d - 1) / s + 1, (w - d - 1) / s + 1)
    }

    public static func forward(_ input: UnsafePointer<Float>, channels: Int, h: Int, w: Int, stride s: Int, dilation d: Int,
                               relu: Bool, out: UnsafeMutablePointer<Float>) {
        let (ho, wo) = outputSize(h, w, stride: s, dilation: d)
        let floor: Float = relu ? 0 : -.infinity
        for c in 0..<channels {
            let src = input + c * h * w, dst = out + c * ho * wo
            for oy in 0..<ho {
                let r0 = src + oy * s * w, r1 = r0 + d * w
                let o = dst + oy * wo
                if s == 1 {
                    for ox in 0..<wo { o[ox] = max(max(max(r0[ox], r0[ox + d]), max(r1[ox], r1[ox + d])), floor) }
                } else {
                    for ox in 0..<wo {
                        let x = ox * s
                        o[ox] = max(max(max(r0[x], r0[x + d]), max(r1[x], r1[x + d])), floor)
                    }
                }
            }
        }
    }
}

/// Numerically stable softmax over `n` values.
public func softmax(_ x: UnsafeMutableBufferPointer<Float>) {
    let m = x.max() ?? 0
    var s: Float = 0
    for i in x.indices { x[i] = (x[i] - m).expf; s += x[i] }
    for i in x.indices { x[i] /= s }
}

extension Float {
    var expf: Float { Float(Foundation.exp(Double(self))) }
}

import Foundation
