import COpenBLAS

/// The few dense float64 kernels the analysis and the anomaly map's statistics need, row-major, on OpenBLAS (BLAS and its LAPACK).
public enum Dense {
    /// C[m×n] (+)= A[m×k]·B[k×n] (optionally transposed operands).
    public static func gemm(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                     _ c: UnsafeMutablePointer<Double>, _ ldc: Int, transA: Bool = false, transB: Bool = false, beta: Double = 0) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Eigenvalues (descending) and eigenvectors (rows, same order) of a symmetric d×d matrix (LAPACK dsyevd).
    public static func symmetricEigen(_ matrix: [Double], _ d: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix, w = [Double](repeating: 0, count: d)
        var n = Int32(d), lda = Int32(d), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var wq = [Double](repeating: 0, count: 1), iq = [Int32](repeating: 0, count: 1)
        dsyevd_("V", "U", &n, &a, &lda, &w, &wq, &lwork, &iq, &liwork, &info, 1, 1)
        lwork = Int32(wq[0]); liwork = iq[0]
        var work = [Double](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_("V", "U", &n, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        precondition(info == 0, "dsyevd failed (info \(info))")
        // LAPACK is column-major: column j of its result is eigenvector j, i.e. row j of `a` as we store it.
        var values = [Double](), vectors = [Double]()
        for j in Swift.stride(from: d - 1, through: 0, by: -1) {
            values.append(w[j]); vectors += a[(j * d)..<((j + 1) * d)]
        }
        return (values, vectors)
    }

    /// Lower Cholesky factor of a symmetric positive-definite d×d matrix, or nil when it is not positive definite.
    public static func cholesky(_ a: [Double], _ d: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0...i {
                var s = a[i * d + j]
                for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        return l
    }

    /// Inverse of a lower-triangular matrix.
    public static func invertLower(_ l: [Double], _ d: Int) -> [Double] {
        var inv = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            inv[i * d + i] = 1 / l[i * d + i]
            for j in 0..<i {
                var s = 0.0
                for k in j..<i { s -= l[i * d + k] * inv[k * d + j] }
                inv[i * d + j] = s / l[i * d + i]
            }
        }
        return inv
    }
}
