import NeuralNet
import Foundation

/// Non-negative matrix factorisation X ≈ W·H (X n×d ≥ 0, W n×k coefficients, H k×d factors), objective
/// ½‖X − WH‖²_F, by HALS — the coordinate descent scikit-learn's `cd` solver runs (one sweep over W's columns, then
/// one over H's rows, per iteration).
///
/// Streaming: H is only updated from WᵀW (k×k), WᵀX (k×d) and ‖X‖², which add over blocks of rows (`NMFStatistics`),
/// and each row's coefficients are a small non-negative least-squares problem against H solved on its own. So a
/// pass over the data = for every block, solve its W given H and add its statistics; then update H.
public enum NMF {
    /// NNDSVDa initialisation (Boutsidis & Gallopoulos; zeros filled with the data's mean), as scikit-learn's
    /// `init='nndsvda'`, from the data's top-k singular vectors (here by the eigenvectors of XᵀX).
    public static func nndsvda(_ x: [Double], rows n: Int, d: Int, k: Int) -> (w: [Double], h: [Double]) {
        var gram = [Double](repeating: 0, count: d * d)
        x.withUnsafeBufferPointer { xb in Dense.gemm(d, d, n, xb.baseAddress!, d, xb.baseAddress!, d, &gram, d, transA: true) }
        let (values, vectors) = Dense.symmetricEigen(gram, d)
        var w = [Double](repeating: 0, count: n * k), h = [Double](repeating: 0, count: k * d)
        for j in 0..<k {
            let s = max(0, values[j]).squareRoot()
            let v = Array(vectors[(j * d)..<((j + 1) * d)])
            // u = Xv / σ
            var u = [Double](repeating: 0, count: n)
            for i in 0..<n { var a = 0.0; for t in 0..<d { a += x[i * d + t] * v[t] }; u[i] = s > 0 ? a / s : 0 }
            if j == 0 {
                // The leading pair is non-negative up to a common sign.
                let sign: Double = (u.reduce(0, +) < 0) ? -1 : 1
                for i in 0..<n { w[i * k] = s.squareRoot() * abs(sign * u[i]) }
                for t in 0..<d { h[t] = s.squareRoot() * abs(sign * v[t]) }
                continue
            }
            let up = u.map { max($0, 0) }, un = u.map { max(-$0, 0) }
            let vp = v.map { max($0, 0) }, vn = v.map { max(-$0, 0) }
            func norm(_ a: [Double]) -> Double { a.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            let mp = norm(up) * norm(vp), mn = norm(un) * norm(vn)
            let (uu, vv, sigma) = mp > mn ? (up, vp, mp) : (un, vn, mn)
            let nu = norm(uu), nv = norm(vv)
            let lbd = (s * sigma).squareRoot()
            for i in 0..<n { w[i * k + j] = nu > 0 ? lbd * uu[i] / nu : 0 }
            for t in 0..<d { h[j * d + t] = nv > 0 ? lbd * vv[t] / nv : 0 }
        }
        let avg = x.reduce(0, +) / Double(x.count)
        let eps = 1e-6
        for i in w.indices where w[i] < eps { w[i] = avg }
        for i in h.indices where h[i] < eps { h[i] = avg }
        return (w, h)
    }

    /// One HALS sweep over the columns of W (n×k) for fixed H: uses A = HHᵀ (k×k) and B = XHᵀ (n×k).
    /// A row's update for column t reads only that row (its columns before t already updated), so the sweep runs row
    /// by row — the same arithmetic as column by column — with the rows split over the cores (the in-memory fit spent
    /// most of its time here, on one core, striding through W once per column).
    static func sweepW(_ w: UnsafeMutablePointer<Double>, rows n: Int, k: Int, a: [Double], b: UnsafePointer<Double>) {
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, n / 4096))
        let out = SendablePointer(w), rhs = SendablePointer(UnsafeMutablePointer(mutating: b))
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            a.withUnsafeBufferPointer { a in
                for i in (n * p / parts)..<(n * (p + 1) / parts) {
                    let wi = out.value + i * k, bi = rhs.value + i * k
                    for t in 0..<k {
                        let hess = a[t * k + t]
                        guard hess > 0 else { continue }
                        var grad = -bi[t]
                        for r in 0..<k { grad += a[t * k + r] * wi[r] }
                        wi[t] = max(wi[t] - grad / hess, 0)
                    }
                }
            }
        }
    }

    /// One HALS sweep over the rows of H (k×d) given C = WᵀW (k×k) and D = WᵀX (k×d).
    static func sweepH(_ h: inout [Double], k: Int, d: Int, c: [Double], dmat: [Double]) {
        for t in 0..<k {
            let hess = c[t * k + t]
            guard hess > 0 else { continue }
            for j in 0..<d {
                var grad = -dmat[t * d + j]
                for r in 0..<k { grad += c[t * k + r] * h[r * d + j] }
                h[t * d + j] = max(h[t * d + j] - grad / hess, 0)
            }
        }
    }

    /// Multiply-adds of one `fit` iteration (X·Hᵀ and WᵀX dominate, n·d·k each; the Gram matrices and sweeps add
    /// n·k² and k²·d): what a caller says before a long in-memory fit.
    public static func iterationCost(rows n: Int, d: Int, k: Int) -> Double {
        2 * Double(n) * Double(d) * Double(k) + 2 * Double(n) * Double(k) * Double(k) + Double(k * k * d)
    }

    /// Batch NMF in memory from (W, H): alternate W and H sweeps until the objective's relative decrease over an
    /// iteration is below `tol`, at most `maxIter` iterations. Returns the objective ½‖X − WH‖² after each iteration.
    @discardableResult
    public static func fit(_ x: [Double], rows n: Int, d: Int, k: Int, w: inout [Double], h: inout [Double],
                           maxIter: Int = 200, tol: Double = 1e-5,
                           onIteration: ((_ iteration: Int, _ objective: Double) -> Void)? = nil) -> [Double] {
        var history: [Double] = []
        let xx = x.reduce(0) { $0 + $1 * $1 }
        var b = [Double](repeating: 0, count: n * k), c = [Double](repeating: 0, count: k * k), dm = [Double](repeating: 0, count: k * d)
        for _ in 0..<maxIter {
            var a = [Double](repeating: 0, count: k * k)
            Dense.gemm(k, k, d, h, d, h, d, &a, k, transB: true)
            x.withUnsafeBufferPointer { xb in Dense.gemm(n, k, d, xb.baseAddress!, d, h, d, &b, k, transB: true) }
            w.withUnsafeMutableBufferPointer { wb in b.withUnsafeBufferPointer { sweepW(wb.baseAddress!, rows: n, k: k, a: a, b: $0.baseAddress!) } }
            Dense.gemm(k, k, n, w, k, w, k, &c, k, transA: true)
            x.withUnsafeBufferPointer { xb in Dense.gemm(k, d, n, w, k, xb.baseAddress!, d, &dm, d, transA: true) }
            sweepH(&h, k: k, d: d, c: c, dmat: dm)
            // Objective from the statistics of the W just used (H updated): recompute D and C terms against new H.
            let obj = objective(xx: xx, c: c, d: dm, h: h, k: k, dim: d)
            onIteration?(history.count + 1, obj)
            if let last = history.last, (last - obj) / max(last, 1e-300) < tol { history.append(obj); break }
            history.append(obj)
        }
        return history
    }

    /// ½(‖X‖² − 2⟨WᵀX, H⟩ + ⟨WᵀW, HHᵀ⟩).
    public static func objective(xx: Double, c: [Double], d dm: [Double], h: [Double], k: Int, dim d: Int) -> Double {
        var cross = 0.0
        for i in 0..<(k * d) { cross += dm[i] * h[i] }
        var hh = [Double](repeating: 0, count: k * k)
        Dense.gemm(k, k, d, h, d, h, d, &hh, k, transB: true)
        var quad = 0.0
        for i in 0..<(k * k) { quad += c[i] * hh[i] }
        return 0.5 * (xx - 2 * cross + quad)
    }

    /// Each row's coefficients for fixed H: exact non-negative least squares, min ‖x − wH‖ s.t. w ≥ 0, by the
    /// active-set method of Lawson & Hanson in the normal-equations form of Bro & de Jong (FNNLS): the k×k Gram
    /// matrix HHᵀ is shared by every row, so a row costs a few small Cholesky solves.
    ///
    /// The solve runs on H's rows scaled to unit norm (HHᵀ with unit diagonal), and the coefficients are scaled back:
    /// the solver's tolerances are absolute, and H's rows can differ in scale by orders of magnitude (a factor that
    /// few pixels use grows large). In the demo's third model HHᵀ's diagonal spanned 750 to 3.7·10⁷; tolerances set
    /// by the largest (3.7·10⁻³) dropped that factor's coefficients (≈ 0.004) and would keep a small row's gradient
    /// from ever entering; the first pass ran 3× longer and ½‖x − wH‖² per row was 2.3× scipy's.
    public static func coefficients(_ x: UnsafePointer<Double>, rows n: Int, d: Int, h: [Double], k: Int) -> [Double] {
        var a = [Double](repeating: 0, count: k * k), b = [Double](repeating: 0, count: n * k)
        Dense.gemm(k, k, d, h, d, h, d, &a, k, transB: true)
        Dense.gemm(n, k, d, x, d, h, d, &b, k, transB: true)
        // s_j = 1/‖h_j‖ (0 for an all-zero row: its coefficient stays 0, as its gradient is 0).
        let s = (0..<k).map { a[$0 * k + $0] > 0 ? 1 / a[$0 * k + $0].squareRoot() : 0 }
        for i in 0..<k { for j in 0..<k { a[i * k + j] = i == j && s[i] == 0 ? 1 : a[i * k + j] * s[i] * s[j] } }
        for r in 0..<n { for j in 0..<k { b[r * k + j] *= s[j] } }
        var w = [Double](repeating: 0, count: n * k)
        // Rows are independent: split them over the cores (each part warm-starts from its previous row's support).
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, n / 256))
        let gram = a, rhs = b
        w.withUnsafeMutableBufferPointer { wb in
            let out = SendablePointer(wb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                var solver = FNNLS(gram: gram, k: k, tol: 1e-10)   // relative to each row's largest |H·x|
                for i in (n * p / parts)..<(n * (p + 1) / parts) { solver.solve(rhs, offset: i * k, into: out.value) }
            }
        }
        for r in 0..<n { for j in 0..<k { w[r * k + j] *= s[j] } }
        return w
    }
}

/// A pointer handed to workers that write disjoint ranges.
struct SendablePointer: @unchecked Sendable { let value: UnsafeMutablePointer<Double>; init(_ v: UnsafeMutablePointer<Double>) { value = v } }

/// Lawson–Hanson NNLS on normal equations (Bro & de Jong's FNNLS) for a fixed Gram matrix, with scratch reused.
struct FNNLS {
    let gram: [Double], k: Int, tol: Double
    private var passive: [Bool], x: [Double], s: [Double], wgrad: [Double], idx: [Int], sub: [Double], rhs: [Double]

    init(gram: [Double], k: Int, tol: Double) {
        self.gram = gram; self.k = k; self.tol = tol
        passive = .init(repeating: false, count: k); x = .init(repeating: 0, count: k); s = x; wgrad = x
        idx = .init(repeating: 0, count: k); sub = .init(repeating: 0, count: k * k); rhs = x
    }

    /// Solves for the right-hand side b[offset..<offset+k] (= H·x of the row) and writes w[offset..<offset+k].
    /// Warm start: the previous solve's support, shrunk until its least-squares solution is positive (a valid
    /// Lawson–Hanson state), then the usual iterations to optimality.
    mutating func solve(_ b: [Double], offset o: Int, into w: UnsafeMutablePointer<Double>) {
        // The tolerance relative to the row: with unit-diagonal Gram, b, the gradient and the coefficients are all in
        // the row's units, whatever the data's scale.
        var bmax = 0.0
        for j in 0..<k { bmax = max(bmax, abs(b[o + j])) }
        let tol = self.tol * max(bmax, .leastNormalMagnitude)
        for j in 0..<k { x[j] = 0 }
        while passive.contains(true) {
            guard solvePassive(b, o) else { for j in 0..<k { passive[j] = false }; break }
            var dropped = false
            for j in 0..<k where passive[j] && s[j] <= tol { passive[j] = false; dropped = true }
            if !dropped { for j in 0..<k { x[j] = passive[j] ? s[j] : 0 }; break }
        }
        for j in 0..<k {
            var g = b[o + j]
            for r in 0..<k where x[r] != 0 { g -= gram[j * k + r] * x[r] }
            wgrad[j] = g
        }
        var outer = 0
        while outer < 3 * k {
            outer += 1
            var best = -1, bestW = tol
            for j in 0..<k where !passive[j] && wgrad[j] > bestW { best = j; bestW = wgrad[j] }
            guard best >= 0 else { break }
            passive[best] = true
            var inner = 0
            while true {
                inner += 1
                guard solvePassive(b, o) else { passive[best] = false; break }
                var alpha = Double.infinity
                for j in 0..<k where passive[j] && s[j] <= 0 {
                    alpha = min(alpha, x[j] / (x[j] - s[j]))
                }
                if alpha == .infinity || inner > 3 * k {
                    for j in 0..<k { x[j] = passive[j] ? max(0, s[j]) : 0 }
                    break
                }
                for j in 0..<k where passive[j] {
                    x[j] += alpha * (s[j] - x[j])
                    if x[j] <= tol { x[j] = 0; passive[j] = false }
                }
            }
            // Gradient of the dual: b − A·x.
            for j in 0..<k {
                var g = b[o + j]
                for r in 0..<k where x[r] != 0 { g -= gram[j * k + r] * x[r] }
                wgrad[j] = g
            }
        }
        for j in 0..<k { w[o + j] = x[j] }
    }

    /// The same into an array.
    mutating func solve(_ b: [Double], offset o: Int, into w: inout [Double]) {
        w.withUnsafeMutableBufferPointer { solve(b, offset: o, into: $0.baseAddress!) }
    }

    /// s = A[P,P]⁻¹ b[P] on the passive set, 0 elsewhere; false when the subsystem is singular.
    private mutating func solvePassive(_ b: [Double], _ o: Int) -> Bool {
        var m = 0
        for j in 0..<k where passive[j] { idx[m] = j; m += 1 }
        // Cholesky of the m×m submatrix, in place in `sub`.
        for i in 0..<m {
            for j in 0...i {
                var v = gram[idx[i] * k + idx[j]]
                for t in 0..<j { v -= sub[i * k + t] * sub[j * k + t] }
                if i == j {
                    guard v > 1e-14 * max(1, gram[idx[i] * k + idx[i]]) else { return false }
                    sub[i * k + i] = v.squareRoot()
                } else { sub[i * k + j] = v / sub[j * k + j] }
            }
        }
        for i in 0..<m {
            var v = b[o + idx[i]]
            for t in 0..<i { v -= sub[i * k + t] * rhs[t] }
            rhs[i] = v / sub[i * k + i]
        }
        for i in Swift.stride(from: m - 1, through: 0, by: -1) {
            var v = rhs[i]
            for t in (i + 1)..<max(i + 1, m) { v -= sub[t * k + i] * rhs[t] }
            rhs[i] = v / sub[i * k + i]
        }
        for j in 0..<k { s[j] = 0 }
        for i in 0..<m { s[idx[i]] = rhs[i] }
        return true
    }
}

/// The statistics of one NMF pass, mergeable over blocks, shards and processes: WᵀW, WᵀX, ‖X‖² and the row count.
public struct NMFStatistics: Codable, Sendable, Equatable {
    public var k: Int, d: Int
    public var wtw: [Double], wtx: [Double]
    public var xx = 0.0, rows = 0.0

    public init(k: Int, d: Int) { self.k = k; self.d = d; wtw = .init(repeating: 0, count: k * k); wtx = .init(repeating: 0, count: k * d) }

    public mutating func add(x: UnsafePointer<Double>, w: [Double], rows n: Int) {
        Dense.gemm(k, k, n, w, k, w, k, &wtw, k, transA: true, beta: 1)
        Dense.gemm(k, d, n, w, k, x, d, &wtx, d, transA: true, beta: 1)
        for i in 0..<(n * d) { xx += x[i] * x[i] }
        rows += Double(n)
    }

    public mutating func merge(_ o: NMFStatistics) {
        for i in wtw.indices { wtw[i] += o.wtw[i] }
        for i in wtx.indices { wtx[i] += o.wtx[i] }
        xx += o.xx; rows += o.rows
    }

    /// ½‖X − WH‖² of the pass's W with `h`.
    public func objective(_ h: [Double]) -> Double { NMF.objective(xx: xx, c: wtw, d: wtx, h: h, k: k, dim: d) }

    /// H after `sweeps` HALS sweeps on these statistics.
    public func updated(_ h: [Double], sweeps: Int = 10) -> [Double] {
        var h = h
        for _ in 0..<sweeps { NMF.sweepH(&h, k: k, d: d, c: wtw, dmat: wtx) }
        return h
    }
}
