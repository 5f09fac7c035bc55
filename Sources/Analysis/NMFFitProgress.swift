/// What factorize says before NMF's in-memory fit on the sample: the fit is up to `maxIterations` HALS iterations
/// over the whole sample in one thread, which with --nonneg split (128 dimensions) and a large --k runs for minutes
/// with no pass over the run to show — so its phase names the sample, the cost per iteration and the bound, and
/// the progress advances per iteration.
enum NMFFitProgress {
    static let maxIterations = 200

    static func phase(rows n: Int, d: Int, k: Int) -> String {
        let gflop = NMF.iterationCost(rows: n, d: d, k: k) / 1e9
        return "NMF fit on a sample of \(n) rows × \(d) dims, k \(k): ≤ \(maxIterations) iterations of "
            + (gflop >= 10 ? String(Int(gflop.rounded())) : String(format: "%.1f", gflop)) + " G multiply-adds (--sample lowers it)"
    }
}
