import COpenBLAS

/// Thin wrappers over OpenBLAS, row-major.
public enum BLAS {
    /// C[m×n] = A[m×k] · B[k×n] (+ C if accumulate), with leading dimensions.
    @inline(__always)
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, transA: Bool = false, transB: Bool = false,
                     accumulate: Bool = false) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    /// Threads OpenBLAS may use for one call.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    /// OpenBLAS's build description (version, kernel, threading), for run records.
    public static var config: String { String(cString: openblas_get_config()) }
}

/// A plain C = A·B on arrays, for benchmarks and callers outside the engine.
public enum Sgemm {
    public static func run(m: Int, n: Int, k: Int, a: [Float], b: [Float], c: inout [Float]) {
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            BLAS.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
        } } }
    }
}
