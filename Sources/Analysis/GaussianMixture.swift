import NeuralNet
import Foundation

/// A Gaussian mixture with full (or diagonal) covariances, fitted by EM one pass per iteration: the E-step of a block needs only
/// the current parameters, and the M-step only the summed sufficient statistics (Σr, Σr·x, Σr·xxᵀ per component),
/// which merge over blocks and shards. Conventions follow scikit-learn's GaussianMixture: `reg` added to the
/// covariances' diagonals, convergence when the mean log-likelihood changes by less than `tol`.
public struct GaussianMixture: Codable, Sendable {
    public var k: Int, d: Int
    public var weights: [Double]
    /// k × d
    public var means: [Double]
    /// k × d × d
    public var covariances: [Double]
    public var reg: Double

    /// Cholesky factors of the precisions, per component (k × d × d, lower), and log-determinant terms.
    private var precisionChol: [Double] = []
    private var logDetChol: [Double] = []

    enum CodingKeys: String, CodingKey { case k, d, weights, means, covariances, reg }

    public init(weights: [Double], means: [Double], covariances: [Double], d: Int, reg: Double) throws {
        k = weights.count; self.d = d
        self.weights = weights; self.means = means; self.covariances = covariances; self.reg = reg
        try prepare()
    }

    /// Precomputes the precision Cholesky factors; throws when a covariance is not positive definite.
    mutating func prepare() throws {
        precisionChol = []; logDetChol = []
        for c in 0..<k {
            let cov = Array(covariances[(c * d * d)..<((c + 1) * d * d)])
            guard let l = Dense.cholesky(cov, d) else { throw AnalysisError.singularCovariance(component: c, reg: reg) }
            // Precision Cholesky (upper, as scikit-learn): solve L·Pᵀ = I → P = (L⁻¹)ᵀ.
            let li = Dense.invertLower(l, d)
            var p = [Double](repeating: 0, count: d * d)
            for i in 0..<d { for j in 0..<d { p[i * d + j] = li[j * d + i] } }
            precisionChol += p
            logDetChol.append((0..<d).reduce(0) { $0 + log(p[$1 * d + $1]) })
        }
    }

    /// log(w_c) + log N(x | μ_c, Σ_c) for n rows: n × k.
    public func weightedLogProb(_ x: UnsafePointer<Double>, rows n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * k)
        let logTwoPi = log(2 * Double.pi)
        var y = [Double](repeating: 0, count: n * d), centered = [Double](repeating: 0, count: n * d)
        for c in 0..<k {
            // y = (x − μ)·P  (P upper: the precision's Cholesky factor)
            centered.withUnsafeMutableBufferPointer { cb in means.withUnsafeBufferPointer { mb in
                let mu = mb.baseAddress! + c * d
                for i in 0..<n { for j in 0..<d { cb[i * d + j] = x[i * d + j] - mu[j] } }
            } }
            precisionChol.withUnsafeBufferPointer { pb in
                Dense.gemm(n, d, d, centered, d, pb.baseAddress! + c * d * d, d, &y, d)
            }
            let base = -0.5 * Double(d) * logTwoPi + logDetChol[c] + log(weights[c])
            y.withUnsafeBufferPointer { yb in out.withUnsafeMutableBufferPointer { ob in
                for i in 0..<n {
                    var s = 0.0
                    for j in 0..<d { s += yb[i * d + j] * yb[i * d + j] }
                    ob[i * k + c] = base - 0.5 * s
                }
            } }
        }
        return out
    }

    /// Responsibilities (n × k) and the sum of the rows' log-likelihoods.
    public func expectation(_ x: UnsafePointer<Double>, rows n: Int) -> (resp: [Double], logLikelihood: Double) {
        var lp = weightedLogProb(x, rows: n)
        var total = 0.0
        for i in 0..<n {
            var m = -Double.infinity
            for c in 0..<k { m = max(m, lp[i * k + c]) }
            var s = 0.0
            for c in 0..<k { s += exp(lp[i * k + c] - m) }
            let norm = m + log(s)
            total += norm
            for c in 0..<k { lp[i * k + c] = exp(lp[i * k + c] - norm) }
        }
        return (lp, total)
    }

    /// The most likely component per row.
    public func predict(_ x: UnsafePointer<Double>, rows n: Int) -> [Int] {
        let lp = weightedLogProb(x, rows: n)
        return (0..<n).map { i in (0..<k).max { lp[i * k + $0] < lp[i * k + $1] }! }
    }

    /// Parameters from summed statistics (the M-step). Throws when a covariance is singular even with `reg`.
    /// `diagonal`: each covariance keeps only its variances (scikit-learn's covariance_type "diag": the same
    /// variances, off-diagonal terms zero).
    public static func maximization(_ s: GMMStatistics, reg: Double, diagonal: Bool = false) throws -> GaussianMixture {
        let k = s.k, d = s.d
        var means = [Double](), covs = [Double]()
        let nks = s.resp.map { $0 + 10 * Double.ulpOfOne }   // scikit-learn's guard against empty components
        let total = nks.reduce(0, +)
        let weights = nks.map { $0 / total }
        for c in 0..<k {
            let nk = nks[c]
            let mu = (0..<d).map { s.sumX[c * d + $0] / nk }
            means += mu
            for i in 0..<d { for j in 0..<d {
                covs.append(i == j ? s.sumXX[(c * d + i) * d + j] / nk - mu[i] * mu[j] + reg
                            : diagonal ? 0 : s.sumXX[(c * d + i) * d + j] / nk - mu[i] * mu[j])
            } }
        }
        return try GaussianMixture(weights: weights, means: means, covariances: covs, d: d, reg: reg)
    }
}

/// Σr, Σr·x, Σr·xxᵀ per component and the log-likelihood sum of one EM pass; they add over blocks.
public struct GMMStatistics: Codable, Sendable {
    public var k: Int, d: Int
    public var resp: [Double], sumX: [Double], sumXX: [Double]
    public var logLikelihood = 0.0, rows = 0.0

    public init(k: Int, d: Int) {
        self.k = k; self.d = d
        resp = .init(repeating: 0, count: k); sumX = .init(repeating: 0, count: k * d); sumXX = .init(repeating: 0, count: k * d * d)
    }

    /// Adds n rows' E-step: split over the cores (each part's statistics summed in part order, so the result depends
    /// only on the thread count).
    public mutating func add(x: UnsafePointer<Double>, rows n: Int, model: GaussianMixture) {
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, n / 2048))
        guard parts > 1 else { addSerially(x: x, rows: n, model: model); return }
        var partial = [GMMStatistics](repeating: GMMStatistics(k: k, d: d), count: parts)
        let xs = SendableConstPointer(x), d = self.d
        partial.withUnsafeMutableBufferPointer { pb in
            let out = SendablePartials(pb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = n * p / parts, hi = n * (p + 1) / parts
                out.value[p].addSerially(x: xs.value + lo * d, rows: hi - lo, model: model)
            }
        }
        for p in partial { merge(p) }
    }

    mutating func addSerially(x: UnsafePointer<Double>, rows n: Int, model: GaussianMixture) {
        let (r, ll) = model.expectation(x, rows: n)
        logLikelihood += ll; rows += Double(n)
        var wx = [Double](repeating: 0, count: n * d)
        for c in 0..<k {
            var rc = 0.0
            wx.withUnsafeMutableBufferPointer { w in r.withUnsafeBufferPointer { rb in
                var sx = [Double](repeating: 0, count: d)
                for i in 0..<n {
                    let ri = rb[i * k + c]
                    rc += ri
                    for j in 0..<d { let v = ri * x[i * d + j]; w[i * d + j] = v; sx[j] += v }
                }
                for j in 0..<d { sumX[c * d + j] += sx[j] }
            } }
            resp[c] += rc
            sumXX.withUnsafeMutableBufferPointer { sb in
                Dense.gemm(d, d, n, wx, d, x, d, sb.baseAddress! + c * d * d, d, transA: true, beta: 1)
            }
        }
    }

    public mutating func merge(_ o: GMMStatistics) {
        for i in resp.indices { resp[i] += o.resp[i] }
        for i in sumX.indices { sumX[i] += o.sumX[i] }
        for i in sumXX.indices { sumXX[i] += o.sumXX[i] }
        logLikelihood += o.logLikelihood; rows += o.rows
    }
}

struct SendableConstPointer: @unchecked Sendable { let value: UnsafePointer<Double>; init(_ v: UnsafePointer<Double>) { value = v } }
struct SendablePartials: @unchecked Sendable { let value: UnsafeMutablePointer<GMMStatistics>; init(_ v: UnsafeMutablePointer<GMMStatistics>) { value = v } }

public enum AnalysisError: Error, CustomStringConvertible {
    case singularCovariance(component: Int, reg: Double)
    case input(String)
    public var description: String {
        switch self {
        case let .singularCovariance(c, reg): return "covariance of component \(c) is singular with reg \(reg)"
        case let .input(s): return s
        }
    }
}
