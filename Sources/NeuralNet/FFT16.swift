import Foundation

/// Radix-2 complex FFTs of length 16 on eight independent signals at once (SIMD8 lanes = eight channels), and the
/// 16×16 real 2-D transforms built from them, for the polyphase FFT convolution. Forward uses e^{−2πi nk/16};
/// inverses are unscaled.
typealias V8 = SIMD8<Float>

enum FFT16 {
    static let bitReverse: [Int] = (0..<16).map { i in
        var r = 0, x = i
        for _ in 0..<4 { r = (r << 1) | (x & 1); x >>= 1 }
        return r
    }
    static let cosT: [Float] = (0..<8).map { Float(cos(2 * Double.pi * Double($0) / 16)) }
    static let sinT: [Float] = (0..<8).map { Float(sin(2 * Double.pi * Double($0) / 16)) }

    /// In-place FFT of 16 contiguous complex values (separate re and im buffers).
    @inline(__always)
    static func transform(_ R: UnsafeMutablePointer<V8>, _ M: UnsafeMutablePointer<V8>, inverse: Bool) {
        for i in 0..<16 {
            let j = bitReverse[i]
            if j > i { swap(&R[i], &R[j]); swap(&M[i], &M[j]) }
        }
        var half = 1
        while half < 16 {
            let step = 8 / half
            var start = 0
            while start < 16 {
                for k in 0..<half {
                    let c = cosT[k * step], sn = inverse ? sinT[k * step] : -sinT[k * step]
                    let a = start + k, b = a + half
                    let tr = R[b] * c - M[b] * sn, ti = R[b] * sn + M[b] * c
                    R[b] = R[a] - tr; M[b] = M[a] - ti
                    R[a] += tr; M[a] += ti
                }
                start += 2 * half
            }
            half *= 2
        }
    }

    /// Scratch for the 2-D transforms: 16×16 complex plus a 16-entry line.
    struct Scratch {
        var re = [V8](repeating: .zero, count: 256), im = [V8](repeating: .zero, count: 256)
        var lr = [V8](repeating: .zero, count: 16), li = [V8](repeating: .zero, count: 16)
    }

    /// Real 16×16 input x[r·16 + s] → half spectrum F[u·9 + k] (k < 9), as separate re/im.
    static func forward2D(_ x: UnsafePointer<V8>, _ fre: UnsafeMutablePointer<V8>, _ fim: UnsafeMutablePointer<V8>, _ w: inout Scratch) {
        w.lr.withUnsafeMutableBufferPointer { lr in w.li.withUnsafeMutableBufferPointer { li in
            let LR = lr.baseAddress!, LI = li.baseAddress!
            // rows: keep bins 0…8 in fre/fim[r·9 + k] temporarily
            for r in 0..<16 {
                for s in 0..<16 { LR[s] = x[r * 16 + s]; LI[s] = .zero }
                transform(LR, LI, inverse: false)
                for k in 0..<9 { fre[r * 9 + k] = LR[k]; fim[r * 9 + k] = LI[k] }
            }
            // columns
            for k in 0..<9 {
                for r in 0..<16 { LR[r] = fre[r * 9 + k]; LI[r] = fim[r * 9 + k] }
                transform(LR, LI, inverse: false)
                for u in 0..<16 { fre[u * 9 + k] = LR[u]; fim[u * 9 + k] = LI[u] }
            }
        } }
    }

    /// Half spectrum F[u·9 + k] → real output rows 0..<rows, cols 0..<cols (unscaled: ×256), into y[r·16 + s].
    static func inverse2D(_ fre: UnsafeMutablePointer<V8>, _ fim: UnsafeMutablePointer<V8>, rows: Int, cols: Int,
                          _ y: UnsafeMutablePointer<V8>, _ w: inout Scratch) {
        w.lr.withUnsafeMutableBufferPointer { lr in w.li.withUnsafeMutableBufferPointer { li in
            let LR = lr.baseAddress!, LI = li.baseAddress!
            for k in 0..<9 {
                for u in 0..<16 { LR[u] = fre[u * 9 + k]; LI[u] = fim[u * 9 + k] }
                transform(LR, LI, inverse: true)
                for r in 0..<rows { fre[r * 9 + k] = LR[r]; fim[r * 9 + k] = LI[r] }
            }
            for r in 0..<rows {
                for k in 0..<9 { LR[k] = fre[r * 9 + k]; LI[k] = fim[r * 9 + k] }
                for k in 9..<16 { LR[k] = fre[r * 9 + 16 - k]; LI[k] = -fim[r * 9 + 16 - k] }
                transform(LR, LI, inverse: true)
                for s in 0..<cols { y[r * 16 + s] = LR[s] }
            }
        } }
    }
}
