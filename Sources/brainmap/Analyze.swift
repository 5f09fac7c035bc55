import Analysis
import ArgumentParser
import Foundation
import NeuralNet
import Pipeline
import Run

/// Analysis passes allocate the same block-sized buffers (rows × 64 doubles) for every block: a fixed mmap
/// threshold above them keeps them in the heap, reused block after block (at 256 KiB every block paid ~30% of its
/// time in page faults), and fixed means glibc never raises it, so the heap's high-water mark stays a few blocks'
/// buffers whatever the slice count. Their matrix products are small and the NNLS solves and E-steps run on their
/// own threads: OpenBLAS stays single-threaded (its idle threads would spin against them).
func prepareAnalysisProcess() {
    _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 512 << 20)
    BLAS.setThreads(1)
}

/// --mask / --within / --erode → which pixels an analysis step takes.
/// Channels numbered from 1 ("1:3" = 1, 2, 3; or "14,9,8") → 0-based indices.
func parseComponents(_ s: String) throws -> [Int] {
    let bad = ValidationError("--components must be FIRST:LAST (numbered from 1, e.g. 1:3) or a list (e.g. 14,9,8); got '\(s)'")
    if s.contains(":") {
        let p = s.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard p.count == 2, let a = p[0], let b = p[1], a >= 1, b >= a else { throw bad }
        return Array((a - 1)..<b)
    }
    let p = s.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
    guard !p.isEmpty, p.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw bad }
    return p.map { $0! - 1 }
}

func parsePixelMask(mask: String?, within: String?, erode: Int) throws -> PixelMask {
    try FlagCheck.atLeast("--erode", erode, 0, "a disk radius in source pixels")
    if let within {
        guard let c = AreaClassifier.classes.firstIndex(of: within) else {
            throw ValidationError("--within \(within): must be one of \(AreaClassifier.classes.joined(separator: ", ")) (a class name as the model predicts it)")
        }
        guard mask == nil else { throw ValidationError("--within and --mask exclude each other (--within CLASS already masks by the predicted labels)") }
        return .within(classID: UInt8(c + 1), erode: erode)
    }
    guard erode == 0 else { throw ValidationError("--erode needs --within CLASS") }
    return mask == nil || mask == "labels" ? .predicted : .source(mask!)
}

struct Factorize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "PCA or NMF of a run's 64-d latents, streamed: writes pca or nmf (k, z, y, x) and RUN/analysis/METHOD.json.",
        discussion: """
        PCA: exact, from the mean and co-moment matrix accumulated block by block in float64 (Chan et al. merge) and
        LAPACK's eigensolver; components signed so that each one's largest-magnitude entry is positive; one more pass
        writes the projections. --shard I/N: N processes started with the same command share every pass (block i is
        shard i mod N's); after each pass they exchange statistics through the step generation's exchange/ directory and
        all take the same step, so all N must run at once (on Slurm: one srun step's tasks, --shard srun). Where they
        cannot, --pass map (with --shard) and --pass reduce/N run each pass as N map tasks and one reduce that never
        wait (brainmap slurm writes them as arrays and reduce jobs).
        NMF (½‖X − WH‖²): the latents made non-negative (--nonneg shift, the default: x − the global per-dimension
        minimum; relu; split = [max(x,0), max(−x,0)]), factors H fitted in memory on a uniform sample of --sample rows
        (NNDSVDa start, HALS = scikit-learn's cd solver), then --passes full passes: each solves every pixel's
        coefficients (non-negative least squares against H), accumulates WᵀW, WᵀX, ‖X‖², and updates H; the last pass
        writes the coefficients. Re-running the same command resumes after the last finished pass.
        """)

    @Argument(help: "The run directory.") var run: String
    @Option(help: "pca or nmf.") var method = "pca"
    @Option(parsing: .unconditional, help: "Components (1…64; 1…128 with --nonneg split).") var k = 15
    @Option(parsing: .unconditional, help: "Slices: 'all', '3', '0:8' or '1,5,9'.") var slices = "all"
    @Option(help: "Pixels: 'labels' (predicted, the default) or a source whose nonzero pixels count.") var mask: String?
    @Option(help: "Only pixels predicted as this class (CTX, HYP, …).") var within: String?
    @Option(parsing: .unconditional, help: "With --within: erode the class by a disk of this radius in source pixels (≥ 0).") var erode = 0
    @Option(help: "NMF: shift, relu or split.") var nonneg = "shift"
    @Option(parsing: .unconditional, help: "NMF: rows sampled for the in-memory fit (≥ 1; its cost grows with it).") var sample = 100_000
    @Option(parsing: .unconditional, help: "NMF: full passes after the sample fit (≥ 1).") var passes = 2
    @Option(parsing: .unconditional, help: "Seed (the NMF sample).") var seed: UInt64 = 1
    @OptionGroup var sharding: ShardOption
    @OptionGroup var passing: PassOption
    @Option(help: "With --shard: seconds to wait for the other shards' statistics before giving up.") var waitTimeout = 3600.0
    @Flag(help: "Start over (a new generation; other shards given --restart join it). Not needed after predict adds slices: that is detected.") var restart = false
    @Flag(help: "No progress bar.") var quiet = false
    @OptionGroup var blas: BLASFlags

    func options() throws -> FactorizeOptions {
        var o = FactorizeOptions(run: run)
        o.waitTimeout = waitTimeout
        guard let m = FactorizeOptions.Method(rawValue: method) else { throw ValidationError("--method must be pca or nmf") }
        guard let nn = NonNegative(rawValue: nonneg) else { throw ValidationError("--nonneg must be shift, relu or split") }
        let split = m == .nmf && nn == .split
        try FlagCheck.range("--k", k, 1...(split ? 128 : 64), split ? "components of the 64-d latents split in two" : "components of the 64-d latents")
        // k factors of 64 dims fitted to fewer than ~10 rows each fit the sample, not the data (the probe's --sample 2
        // with --k 3: a per-row objective 300× the default's).
        if m == .nmf { try FlagCheck.atLeast("--sample", sample, 10 * k, "NMF fits --k \(k) factors on the sample: give at least 10 rows per factor") }
        try FlagCheck.atLeast("--passes", passes, 1)
        o.method = m; o.k = k; o.nonneg = nn; o.sample = sample; o.passes = passes; o.seed = seed; o.restart = restart
        o.mask = try parsePixelMask(mask: mask, within: within, erode: erode)
        if slices != "all" { o.slices = try parseSlices(slices) }
        o.shard = try sharding.resolve()
        o.pass = try passing.resolve(shard: o.shard, restart: restart)
        return o
    }

    func run() async throws {
        let o = try options()
        prepareAnalysisProcess()
        let bars = PhaseBars(quiet: quiet)
        guard let s = try await passing.run(bars, { try await FactorizeJob(options: o).run { bars.update($0.phase, $0.done, $0.total) } }) else { return }
        bars.finish()
        for n in s.notes { say("note: \(n)") }
        if s.upToDate {
            say("\(s.array) is up to date: computed with these parameters from the run's current features (--restart recomputes it) → \(s.resultPath)")
            return
        }
        say("\(s.rows) rows")
        if !s.explainedVarianceRatio.isEmpty {
            say("explained variance ratio: " + s.explainedVarianceRatio.map { String(format: "%.4f", $0) }.joined(separator: " ")
                + String(format: " (sum %.4f)", s.explainedVarianceRatio.reduce(0, +)))
        }
        if !s.objectives.isEmpty {
            say(String(format: "objective ½‖X − WH‖²: sample fit %.6g (per row %.5g); full passes ", s.sampleObjective, s.sampleObjective / Double(max(1, s.sampleRows)))
                + s.objectives.map { String(format: "%.6g (per row %.5g)", $0, $0 / Double(s.rows)) }.joined(separator: ", "))
        }
        say(String(format: "%.1f s, peak RSS %@ → %@/%@ and %@", s.wall, formatBytes(s.peakRSS), run, s.array, s.resultPath))
    }
}

struct SelectFactors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "select-factors",
        abstract: "Per-ROI distributions of the factors, greedy predictive-factor selection, class-wise latent covariance.",
        discussion: """
        For each factor, its positive coefficients summed per ROI and normalised over ROIs; then picks, greedily, the
        (factor, ROI) with the highest coverage − λ·leakage, removing that factor and that ROI after each pick (λ 0.5 for
        areas, 0.3 for layers in the paper). Also the covariance of unit-normalised latents per ROI. Writes
        RUN/analysis/select-factors.json.
        """)
    @Argument(help: "The run directory.") var run: String
    @Option(help: "ROIs: integer ids (z, y, x) on the run's grid or the source's, e.g. phantom.zarr/layers or run.zarr/labels.") var rois: String
    @Option(parsing: .unconditional, help: "λ, the leakage penalty (≥ 0).") var lambda = 0.5
    @Option(help: "The factorisation: nmf or pca.") var on = "nmf"
    @Option(parsing: .unconditional, help: "Picks, ≥ 1 (default: min(factors, ROIs)).") var top: Int?
    @Option(parsing: .unconditional, help: "Slices: 'all', '3', '0:8' or '1,5,9'.") var slices = "all"

    func run() async throws {
        var o = SelectFactorsOptions(run: run, rois: rois)
        guard lambda.isFinite, lambda >= 0 else { throw ValidationError("--lambda \(lambda) must be a finite number ≥ 0 (the paper: 0.5 for areas, 0.3 for layers)") }
        if let top { try FlagCheck.atLeast("--top", top, 1, "picks") }
        guard ["nmf", "pca"].contains(on) else { throw ValidationError("--on must be nmf or pca (the factorisations of brainmap factorize); got '\(on)'") }
        o.lambda = lambda; o.on = on; o.top = top
        if slices != "all" { o.slices = try parseSlices(slices) }
        prepareAnalysisProcess()
        let bar = LazyProgressBar("select-factors")
        let s = try await SelectFactorsJob.run(o) { bar.update($0, of: $1) }
        bar.finish()
        say("ROI ids: " + s.roiIds.map(String.init).joined(separator: " ") + "  (pixels: " + s.counts.map(String.init).joined(separator: " ") + ")")
        say("pick  factor  ROI   coverage  leakage   score")
        for (i, p) in s.picks.enumerated() {
            say(String(format: "%4d  %6d  %3d   %8.4f  %7.4f  %6.4f", i + 1, p.factor, p.roi, p.coverage, p.leakage, p.score))
        }
        say("→ \(s.resultPath)")
    }
}

struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gaussian mixture (or k-means) clustering of a factorisation, per-ROI distributions, cross-slice matching.",
        discussion: """
        GMM: full covariances (--covariance diag: variances only), k-means++ initialisation on a --sample, reg_covar
        1e-6 (raised tenfold, with a note, when a covariance is singular), tol 1e-3 on the mean log-likelihood,
        ≤ --max-iter (100) iterations, one streamed pass each. Writes
        `clusters` (u1: cluster + 1, 0 outside the mask) and RUN/analysis/clusters.json: parameters, per-ROI
        distributions, ARI and V-measure against --rois, silhouette on a sample, and with --match A,B the clusters of
        slice A matched to slice B's by Jensen–Shannon distance of their per-ROI distributions (argmin, and one-to-one
        by the Hungarian algorithm).
        """)
    @Argument(help: "The run directory.") var run: String
    @Option(parsing: .unconditional, help: "Clusters (2…255: stored as u1).") var k = 4
    @Option(help: "gmm or kmeans.") var method = "gmm"
    @Option(help: "GMM covariances: full, or diag (variances only, along the input's channels: fewer parameters; the demo's areas from PCs).") var covariance = "full"
    @Option(help: "The array clustered: nmf, pca or features.") var on = "nmf"
    @Option(parsing: .unconditional, help: "Its channels clustered, numbered from 1 as printed: '1:3' (PCs 1, 2 and 3, as the paper clusters areas) or a list '14,9,8'; default all.") var components: String?
    @Option(parsing: .unconditional, help: "σ in source pixels of a Gaussian mean of the input over each pixel's neighbourhood, within --within's class (else predicted tissue), before clustering; 0: none.") var smooth = 0.0
    @Option(parsing: .unconditional, help: "σ in source pixels across the layers (> 0, with --smooth): the mean is then oriented, --smooth along the layers and this across them, in the direction the clustered channels change least (one per slice, from their structure tensor).") var smoothAcross: Double?
    @Option(parsing: .unconditional, help: "Cluster the input's N leading principal components over the masked pixels (after --smooth) instead of its channels (1…the channels clustered; the demo's layers: 4).") var principal: Int?
    @Option(parsing: .unconditional, help: "Fit the mixture on this fraction of the pixels, those where the averaged input changes least (with --smooth; inside areas, away from their boundaries), then assign every pixel (0 < F < 1; the demo: 0.7 for areas, 0.5 for layers; --principal's components still come from every pixel).") var fitSteady: Double?
    @Option(help: "The output's name: 'clusters', or 'clusters_NAME' to keep another clustering of the run beside it (RUN/NAME, RUN/analysis/NAME.json).") var name = "clusters"
    @Option(help: "Only pixels predicted as this class (CTX, …), as the paper clusters cortex.") var within: String?
    @Option(parsing: .unconditional, help: "With --within: erode by a disk of this radius in source pixels (≥ 0; the paper: 64).") var erode = 0
    @Option(help: "Pixels: 'labels' (predicted) or a source whose nonzero pixels count.") var mask: String?
    @Option(help: "ROIs (integer ids) for distributions, ARI and V-measure, e.g. phantom.zarr/layers.") var rois: String?
    @Option(parsing: .unconditional, help: "Match the clusters of two slices, A,B (needs --rois).") var match: String?
    @Option(parsing: .unconditional, help: "Slices: 'all', '3', '0:8' or '1,5,9'.") var slices = "all"
    @Option(parsing: .unconditional, help: "Rows sampled for k-means (≥ --k).") var sample = 20_000
    @Option(parsing: .unconditional, help: "GMM: EM iterations at most (≥ 1; a Slurm plan submits this many passes, the ones after convergence exit at once).") var maxIter = 100
    @Option(parsing: .unconditional, help: "Seed.") var seed: UInt64 = 1
    @OptionGroup var sharding: ShardOption
    @OptionGroup var passing: PassOption
    @Option(help: "With --shard: seconds to wait for the other shards' statistics before giving up.") var waitTimeout = 3600.0
    @Flag(help: "Start over (a new generation; other shards given --restart join it).") var restart = false
    @Flag(help: "No progress bar.") var quiet = false
    @OptionGroup var blas: BLASFlags

    func options() throws -> ClusterOptions {
        var o = ClusterOptions(run: run)
        o.waitTimeout = waitTimeout; o.restart = restart
        o.shard = try sharding.resolve()
        o.pass = try passing.resolve(shard: o.shard, restart: restart)
        guard let m = ClusterOptions.Method(rawValue: method) else { throw ValidationError("--method must be gmm or kmeans") }
        guard let cov = ClusterOptions.Covariance(rawValue: covariance) else { throw ValidationError("--covariance must be full or diag; got '\(covariance)'") }
        guard cov == .full || m == .gmm else { throw ValidationError("--covariance diag is a GMM's; --method kmeans has no covariances") }
        o.covariance = cov
        guard ["nmf", "pca", "features"].contains(on) else {
            throw ValidationError("--on must be nmf, pca or features (the per-pixel vectors clustered); got '\(on)'")
        }
        try FlagCheck.range("--k", k, 2...255, "clusters are stored as u1: cluster + 1, 0 outside the mask")
        try FlagCheck.atLeast("--sample", sample, k, "k-means++ needs at least --k rows")
        try FlagCheck.atLeast("--max-iter", maxIter, 1)
        o.method = m; o.k = k; o.on = on; o.rois = rois; o.sample = sample; o.seed = seed; o.maxIter = maxIter; o.name = name
        if let components { o.components = try parseComponents(components) }
        guard smooth >= 0, smooth.isFinite else { throw ValidationError("--smooth must be a finite number ≥ 0 (σ in source pixels); got \(smooth)") }
        o.smooth = smooth
        if let smoothAcross {
            guard smoothAcross > 0, smoothAcross.isFinite else { throw ValidationError("--smooth-across must be a finite number > 0 (σ across the layers in source pixels); got \(smoothAcross)") }
            guard smooth > 0 else { throw ValidationError("--smooth-across needs --smooth (σ along the layers, > 0)") }
            o.smoothAcross = smoothAcross
        }
        if let principal {
            try FlagCheck.atLeast("--principal", principal, 1, "a number of principal components")
            o.principal = principal
        }
        if let fitSteady {
            guard fitSteady > 0, fitSteady < 1 else { throw ValidationError("--fit-steady \(fitSteady): a fraction of the pixels, above 0 and below 1 (e.g. 0.7)") }
            guard smooth > 0 else { throw ValidationError("--fit-steady needs --smooth (it picks pixels by how fast the averaged input changes)") }
            o.fitSteady = fitSteady
        }
        o.mask = try parsePixelMask(mask: mask, within: within, erode: erode)
        if slices != "all" { o.slices = try parseSlices(slices) }
        if let match {
            let p = match.split(separator: ",").compactMap { Int($0) }
            guard p.count == 2 else { throw ValidationError("--match must look like 3,4") }
            guard p[0] != p[1] else { throw ValidationError("--match \(match) names one slice twice; give two different slices, e.g. 3,4") }
            o.match = (p[0], p[1])
        }
        return o
    }

    func run() async throws {
        let o = try options()
        prepareAnalysisProcess()
        let bars = PhaseBars(quiet: quiet)
        guard let s = try await passing.run(bars, { try await ClusterJob(options: o).run { bars.update($0.phase, $0.done, $0.total) } }) else { return }
        bars.finish()
        for n in s.notes { say("note: \(n)") }
        if s.upToDate {
            say("\(name) is up to date: computed with these parameters from the run's current inputs (--restart recomputes it) → \(s.resultPath)")
            return
        }
        if o.method == .gmm {
            say(String(format: "%d rows, EM %@ after %d iterations, mean log-likelihood %.5f, reg_covar %g", s.rows,
                       s.converged ? "converged" : "stopped", s.iterations, s.logLikelihood.last ?? 0, s.reg))
        }
        for (z, d) in s.layerDirections.sorted(by: { $0.key < $1.key }) {
            say(String(format: "slice %d: mean laid along %.1f° from the x axis (structure tensor coherence %.2f)", z, d.degrees, d.coherence))
        }
        if let sil = s.silhouette { say(String(format: "silhouette (sample) %.4f", sil)) }
        if let ari = s.ari, let v = s.vMeasure {
            say(String(format: "against the ROIs: ARI %.4f, homogeneity %.4f, completeness %.4f, V-measure %.4f", ari, v.homogeneity, v.completeness, v.v))
            say("per cluster, fraction of its pixels in ROI " + s.roiIds.map(String.init).joined(separator: " "))
            for (c, d) in s.distributions.enumerated() { say("  cluster \(c + 1): " + d.map { String(format: "%.3f", $0) }.joined(separator: " ")) }
        }
        if let (a, b) = o.match {
            say("matching slice \(a) → \(b) (JS distance of per-ROI distributions):")
            for (i, j) in s.argmin.enumerated() {
                guard j >= 0 else { say("  cluster \(i + 1): no pixel in slice \(a) inside the ROIs, nothing to match"); continue }
                let partner = s.oneToOne[i] >= 0 ? "\(s.oneToOne[i] + 1)" : "none (more clusters inside the ROIs in slice \(a) than in \(b))"
                say(String(format: "  cluster %d → %d (JS %.4f); one-to-one → %@", i + 1, j + 1, s.jsDistances[i][j], partner))
            }
        }
        say(String(format: "%.1f s, peak RSS %@ → %@/%@ and %@", s.wall, formatBytes(s.peakRSS), run, name, s.resultPath))
    }
}
