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
    static func sweepW(_ w: UnsafeMutablePointer<Double>, rows n: Int, k: Int, a: [Double], b: UnsafePointer<Double>) {
        for t in 0..<k {
            let hess = a[t * k + t]
            guard hess > 0 else { continue }
            for i in 0..<n {
                var grad = -b[i * k + t]
                let wi = w + i * k
                for r in 0..<k { grad += a[t * k + r] * wi[r] }
                wi[t] = max(wi[t] - grad / hess, 0)
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

    /// Batch NMF in memory from (W, H): alternate W and H sweeps until the objective's relative decrease over an
    /// iteration is below `tol`, at most `maxIter` iterations. Returns the objective ½‖X − WH‖² after each iteration.
    @discardableResult
    public static func fit(_ x: [Double], rows n: Int, d: Int, k: Int, w: inout [Double], h: inout [Double],
                           maxIter: Int = 200, tol: Double = 1e-5) -> [Double] {
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

    /// Each row's coefficients for fixed H: non-negative least squares by HALS sweeps from the clipped
    /// unconstrained solution, until no coefficient moves by more than `tol` relative to the row's largest.
    public static func coefficients(_ x: UnsafePointer<Double>, rows n: Int, d: Int, h: [Double], k: Int,
                                    sweeps: Int = 100, tol: Double = 1e-6) -> [Double] {
        var a = [Double](repeating: 0, count: k * k), b = [Double](repeating: 0, count: n * k)
        Dense.gemm(k, k, d, h, d, h, d, &a, k, transB: true)
        Dense.gemm(n, k, d, x, d, h, d, &b, k, transB: true)
        var w = [Double](repeating: 0, count: n * k)
        // Start: B·A⁻¹ clipped at 0 (A is k×k, positive definite when H has full rank).
        if let l = Dense.cholesky(a, k) {
            let li = Dense.invertLower(l, k)
            var ainv = [Double](repeating: 0, count: k * k)
            Dense.gemm(k, k, k, li, k, li, k, &ainv, k, transA: true)
            Dense.gemm(n, k, k, b, k, ainv, k, &w, k)
            for i in w.indices where w[i] < 0 { w[i] = 0 }
        }
        var previous = w
        for _ in 0..<sweeps {
            w.withUnsafeMutableBufferPointer { wb in b.withUnsafeBufferPointer { sweepW(wb.baseAddress!, rows: n, k: k, a: a, b: $0.baseAddress!) } }
            var moved = 0.0, scale = 1e-300
            for i in w.indices { moved = max(moved, abs(w[i] - previous[i])); scale = max(scale, abs(w[i])) }
            if moved <= tol * scale { break }
            previous = w
        }
        return w
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
