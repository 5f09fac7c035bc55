import COpenBLAS

/// Count, mean, co-moment matrix Σ(x−μ)(x−μ)ᵀ, minimum and maximum of d-dimensional rows, in float64, built block
/// by block and merged pairwise (Chan, Golub & LeVeque): any split of the rows into blocks, shards or processes, merged
/// in any order, gives the same statistics up to rounding.
public struct Moments: Codable, Sendable, Equatable {
    public var d: Int
    public var count: Double = 0
    public var mean: [Double]
    public var comoment: [Double]
    public var min: [Double], max: [Double]

    public init(d: Int) {
        self.d = d
        mean = .init(repeating: 0, count: d); comoment = .init(repeating: 0, count: d * d)
        min = .init(repeating: .infinity, count: d); max = .init(repeating: -.infinity, count: d)
    }

    /// Adds n rows (row-major n×d).
    public mutating func add(_ x: UnsafePointer<Double>, rows n: Int) {
        guard n > 0 else { return }
        var b = Moments(d: d)
        b.count = Double(n)
        for i in 0..<n { for j in 0..<d {
            let v = x[i * d + j]
            b.mean[j] += v; b.min[j] = Swift.min(b.min[j], v); b.max[j] = Swift.max(b.max[j], v)
        } }
        for j in 0..<d { b.mean[j] /= Double(n) }
        var c = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { c[i * d + j] = x[i * d + j] - b.mean[j] } }
        // Upper triangle of CᵀC, then mirrored.
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), 1, c, Int32(d), 0, &b.comoment, Int32(d))
        for i in 0..<d { for j in 0..<i { b.comoment[i * d + j] = b.comoment[j * d + i] } }
        merge(b)
    }

    public mutating func merge(_ o: Moments) {
        precondition(o.d == d)
        guard o.count > 0 else { return }
        guard count > 0 else { self = o; return }
        let n = count + o.count
        let delta = (0..<d).map { o.mean[$0] - mean[$0] }
        let f = count * o.count / n
        for i in 0..<d { for j in 0..<d { comoment[i * d + j] += o.comoment[i * d + j] + delta[i] * delta[j] * f } }
        for j in 0..<d {
            mean[j] += delta[j] * o.count / n
            min[j] = Swift.min(min[j], o.min[j]); max[j] = Swift.max(max[j], o.max[j])
        }
        count = n
    }

    /// Sample covariance (n − 1 in the denominator, as numpy and scikit-learn).
    public var covariance: [Double] { comoment.map { $0 / Swift.max(1, count - 1) } }
}
