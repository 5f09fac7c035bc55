import COpenBLAS
import NeuralNet

/// PCA from streamed moments: the eigenvectors of the covariance by LAPACK, largest first, each with its
/// largest-magnitude entry positive (scikit-learn's sign convention since 1.5).
public struct PCAModel: Codable, Sendable {
    public var mean: [Double]
    /// k × d, rows are components.
    public var components: [Double]
    public var explainedVariance: [Double], explainedVarianceRatio: [Double]
    public var k: Int, d: Int

    public init(moments m: Moments, k: Int) {
        let d = m.d, k = Swift.min(k, d)
        let cov = m.covariance
        let (values, vectors) = Dense.symmetricEigen(cov, d)
        var comps = [Double]()
        for c in 0..<k {
            var row = Array(vectors[(c * d)..<((c + 1) * d)])
            let big = row.indices.max { abs(row[$0]) < abs(row[$1]) }!
            if row[big] < 0 { row = row.map { -$0 } }
            comps += row
        }
        let total = (0..<d).reduce(0) { $0 + cov[$1 * d + $1] }
        mean = m.mean; components = comps; self.k = k; self.d = d
        explainedVariance = Array(values.prefix(k))
        explainedVarianceRatio = explainedVariance.map { total > 0 ? $0 / total : 0 }
    }

    /// Projections of n rows onto the components: n × k.
    public func transform(_ x: UnsafePointer<Double>, rows n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { c[i * d + j] = x[i * d + j] - mean[j] } }
        var out = [Double](repeating: 0, count: n * k)
        Dense.gemm(n, k, d, c, d, components, d, &out, k, transB: true)
        return out
    }
}
