import Foundation
import XCTest
@testable import Analysis
import NeuralNet
import Phantom
import Pipeline
import Run
import TestSupport
import VolumeStore

/// factorize, select-factors and cluster on a real prediction run (a small phantom, random weights, stride 2),
/// against scikit-learn on the same rows.
final class AnalysisJobTests: XCTestCase {
    static func makeRun(_ dir: String) async throws -> String {
        try await PhantomWriter.write(to: dir + "/ph.zarr", shape: [2, 200, 260], seed: 3, chunks: [1, 64, 64], pyramidLevels: 1)
        try Safetensors.save(AreaClassifier.randomParameters(seed: 7), path: dir + "/w.safetensors")
        var o = PredictOptions(source: dir + "/ph.zarr/raw", model: dir + "/w.safetensors", out: dir + "/run.zarr")
        o.stride = 2; o.tile = 32; o.block = 64
        _ = try await PredictJob(options: o, context: SourceOptions()).run()
        return dir + "/run.zarr"
    }

    /// The rows factorize sees: features of predicted pixels of a slice, in block order.
    static func rows(_ runPath: String, slice z: Int) async throws -> [[Double]] {
        let run = try await RunArrays(root: runPath, context: SourceOptions())
        let f = try await run.channels("features")
        var out: [[Double]] = []
        for b in run.blocks([z]) {
            guard let m = try await PixelMask.predicted.mask(run, b, source: nil) else { continue }
            let (x, px) = try await run.rows(f, b, mask: m)
            for i in 0..<px.count { out.append(Array(x[(i * 64)..<((i + 1) * 64)])) }
        }
        return out
    }

    /// A step as a Slurm plan runs it, in this process: per pass `tasks` map tasks (`--pass map`; the very first one
    /// with --restart, for a new generation), then the reduce (`--pass reduce/N`), until a reduce finishes the step.
    /// Returns the finishing reduce's summary and the number of passes.
    static func mapReduce<S>(tasks: Int = 3, _ job: (Shard, PassMode, _ restart: Bool) async throws -> S) async throws -> (S, passes: Int) {
        for p in 1...50 {
            for i in 0..<tasks {
                do { _ = try await job(try Shard(index: i, count: tasks), .map, p == 1 && i == 0); XCTFail("map task \(i) of pass \(p) did not end at its pass") }
                catch is PassEnd {}
            }
            do { return (try await job(.all, .reduce(tasks: tasks), false), p) } catch is PassEnd {}
        }
        throw XCTSkip("no reduce finished the step in 50 passes")
    }

    func testFactorizeSelectAndClusterOnARun() async throws {
        let dir = PythonReference.tempDir("analysis-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try await Self.makeRun(dir)
        let x = try await Self.rows(run, slice: 1)
        XCTAssertGreaterThan(x.count, 5000)
        // A reduce before any map task: refused, the run's manifest untouched.
        var early = FactorizeOptions(run: run)
        early.pass = .reduce(tasks: 3)
        do { _ = try await FactorizeJob(options: early).run(); XCTFail("a reduce before any map task") }
        catch { XCTAssertTrue("\(error)".contains("no map task has run") && "\(error)".contains("--pass map --shard I/N"), "\(error)") }
        XCTAssertNil(try Run.inspect(run).manifest.steps["pca"])

        // PCA: components and explained variance as scikit-learn's on the same rows; projections written.
        var p = FactorizeOptions(run: run)
        p.k = 5; p.slices = [1]
        let ps = try await FactorizeJob(options: p).run()
        XCTAssertEqual(ps.rows, x.count)
        // A clustering of slices the PCA did not cover: refused before anything is touched (it would have clustered
        // slice 1 and left slice 0 as if outside the mask).
        var beyond = ClusterOptions(run: run)
        beyond.on = "pca"; beyond.k = 2; beyond.slices = [0, 1]
        do { _ = try await ClusterJob(options: beyond).run(); XCTFail("slice 0 has no PCs") }
        catch { XCTAssertTrue("\(error)".contains("factorized over other slices than these, so slice 0 has no coefficients") && "\(error)".contains("--slices"), "\(error)") }
        XCTAssertNil(try Run.inspect(run).manifest.steps["clusters"])
        let pcaDoc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ps.resultPath))) as! [String: Any]
        let comps = pcaDoc["components"] as! [Double]
        let ref = try AlgorithmTests.reference(["task": "pca", "X": x, "k": 5])
        let rc = (ref["components"] as! [[Double]]).joined().map { $0 }
        // Components the data determines well (a clear eigen-gap) match to 1e-6; all explained variances to 1e-8.
        let ev = ref["explained_variance"] as! [Double]
        for c in 0..<5 where c == 4 || ev[c] > 1.05 * ev[c + 1] {
            for j in 0..<64 { XCTAssertEqual(comps[c * 64 + j], rc[c * 64 + j], accuracy: 1e-6, "component \(c)[\(j)]") }
        }
        for (a, b) in zip(ps.explainedVarianceRatio, ref["explained_variance_ratio"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-8) }
        let pca = try await VolumeSource.open(run + "/pca")
        XCTAssertEqual(pca.shape, [5, 2, 100, 130])

        // Two shards at once (two jobs exchanging each pass's statistics) = one process.
        func sharded(_ base: FactorizeOptions) async throws -> (FactorizeSummary, FactorizeSummary) {
            // --restart: the same parameters were just computed in one process; both shards join one new generation.
            var a0 = base, b0 = base
            a0.restart = true; b0.restart = true
            a0.shard = try Shard(index: 0, count: 2); b0.shard = try Shard(index: 1, count: 2)
            let a = a0, b = b0
            // A task group: if one shard fails, the other (waiting for its statistics) is cancelled.
            return try await withThrowingTaskGroup(of: (Int, FactorizeSummary).self) { group in
                group.addTask { (0, try await FactorizeJob(options: a).run()) }
                group.addTask { (1, try await FactorizeJob(options: b).run()) }
                var out: [Int: FactorizeSummary] = [:]
                for try await (i, s) in group { out[i] = s }
                return (out[0]!, out[1]!)
            }
        }
        let (pa, pb) = try await sharded(p)
        XCTAssertEqual(pa.rows, ps.rows); XCTAssertEqual(pb.rows, ps.rows)
        for (a, b) in zip(pa.explainedVarianceRatio, ps.explainedVarianceRatio) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(pa.explainedVarianceRatio, pb.explainedVarianceRatio)
        // As map tasks and reduces (3 tasks a pass, none waiting for another) = one process: the moments, then the
        // projections; status shows where each shard and the reduce are.
        let (pm, pcaPasses) = try await Self.mapReduce { shard, pass, restart in
            var o = p
            o.shard = shard; o.pass = pass; o.restart = restart
            return try await FactorizeJob(options: o).run()
        }
        XCTAssertEqual(pcaPasses, 2)
        XCTAssertEqual(pm.rows, ps.rows)
        for (a, b) in zip(pm.explainedVarianceRatio, ps.explainedVarianceRatio) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        let pcaStatus = try XCTUnwrap(RunStatus.of(try Run.inspect(run)).steps.first { $0.name == "pca" })
        XCTAssertTrue(pcaStatus.complete)
        XCTAssertEqual(pcaStatus.lastPerShard, ["reduce": "pca-written", "shard-0-of-3": "pca-written", "shard-1-of-3": "pca-written", "shard-2-of-3": "pca-written"])
        XCTAssertEqual(pcaStatus.donePerShard["reduce"], 2)
        let mapped = try await VolumeSource.open(run + "/pca")
        XCTAssertEqual(mapped.shape, [5, 2, 100, 130])

        // NMF: the streamed objective within 1% of scikit-learn's batch NMF (same NNDSVDa start, cd solver).
        var n = FactorizeOptions(run: run)
        n.method = .nmf; n.k = 6; n.slices = [1]; n.sample = 3000; n.passes = 3
        let ns = try await FactorizeJob(options: n).run()
        let nref = try AlgorithmTests.reference(["task": "nmf-nndsvda", "X": x, "k": 6])
        let sk = nref["objective"] as! Double
        XCTAssertLessThanOrEqual(ns.objectives.last!, 1.01 * sk, "brainmap \(ns.objectives) vs scikit-learn \(sk)")
        XCTAssertLessThanOrEqual(ns.objectives.last!, ns.objectives.first! * (1 + 1e-9), "passes do not make it worse")
        // Resumed: the same command again picks up the saved state (no new sample fit) and gives the same objective.
        let again = try await FactorizeJob(options: n).run()
        XCTAssertEqual(again.objectives.last!, ns.objectives.last!, accuracy: 1e-9 * ns.objectives.last!)
        // In two shards: both take the same steps, and reach the one-process objective within 1%.
        let (na, nb) = try await sharded(n)
        XCTAssertEqual(na.objectives, nb.objectives)
        XCTAssertLessThanOrEqual(na.objectives.last!, 1.01 * ns.objectives.last!, "\(na.objectives) vs \(ns.objectives)")
        // As map tasks and reduces: a reduce whose pass a shard has not published refuses, naming it; the missing map
        // task, then the reduce, continue; the objective as one process's within 1%.
        var nm = n
        nm.restart = true; nm.shard = try Shard(index: 0, count: 3); nm.pass = .map
        do { _ = try await FactorizeJob(options: nm).run() } catch is PassEnd {}
        nm.restart = false; nm.shard = try Shard(index: 1, count: 3)
        do { _ = try await FactorizeJob(options: nm).run() } catch is PassEnd {}
        nm.shard = .all; nm.pass = .reduce(tasks: 3)
        do { _ = try await FactorizeJob(options: nm).run(); XCTFail("reduced without shard 2") }
        catch { XCTAssertTrue("\(error)".contains("shard 2/3 of 3 did not publish it"), "\(error)") }
        let (nmr, nmfPasses) = try await Self.mapReduce { shard, pass, _ in
            var o = n
            o.shard = shard; o.pass = pass
            return try await FactorizeJob(options: o).run()
        }
        XCTAssertEqual(nmfPasses, 4, "the pass that was half done, then 3 NMF passes")
        XCTAssertEqual(nmr.objectives.count, 3)
        XCTAssertLessThanOrEqual(nmr.objectives.last!, 1.01 * ns.objectives.last!, "\(nmr.objectives) vs \(ns.objectives)")

        // select-factors against the run's own labels as ROIs.
        var sf = SelectFactorsOptions(run: run, rois: run + "/labels")
        sf.slices = [1]
        let sel = try await SelectFactorsJob.run(sf)
        XCTAssertEqual(sel.picks.count, min(6, sel.roiIds.count))
        for row in sel.distribution { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-9) }
        XCTAssertEqual(Set(sel.picks.map(\.factor)).count, sel.picks.count, "a factor is picked once")
        XCTAssertEqual(sel.covariances.first?.count, 64 * 64)

        // cluster: GMM on the NMF coefficients of both slices, matched across them by the phantom's areas.
        var c = ClusterOptions(run: run)
        c.k = 3; c.rois = dir + "/ph.zarr/areas"; c.match = (0, 1); c.slices = [1]
        do { _ = try await ClusterJob(options: c).run(); XCTFail("--match needs both slices") }
        catch { XCTAssertTrue("\(error)".contains("--match")) }
        n.slices = [0, 1]
        _ = try await FactorizeJob(options: n).run()
        c.slices = [0, 1]
        let cs = try await ClusterJob(options: c).run()
        XCTAssertTrue(cs.converged)
        XCTAssertEqual(cs.argmin.count, 3); XCTAssertEqual(cs.oneToOne.sorted(), [0, 1, 2])
        for row in cs.distributions { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-9) }
        // Resumed from the saved EM state: no pass repeated, the same model and answers.
        let resumed = try await ClusterJob(options: c).run()
        XCTAssertEqual(resumed.iterations, cs.iterations)
        XCTAssertEqual(resumed.logLikelihood, cs.logLikelihood)
        XCTAssertEqual(resumed.distributions, cs.distributions)
        // In two shards: both processes take the same EM steps and report the same clusters.
        var c0 = c, c1 = c
        c0.restart = true; c1.restart = true
        c0.shard = try Shard(index: 0, count: 2); c1.shard = try Shard(index: 1, count: 2)
        let (sa, sb) = try await withThrowingTaskGroup(of: (Int, ClusterSummary).self) { group in
            let o0 = c0, o1 = c1
            group.addTask { (0, try await ClusterJob(options: o0).run()) }
            group.addTask { (1, try await ClusterJob(options: o1).run()) }
            var out: [Int: ClusterSummary] = [:]
            for try await (i, s) in group { out[i] = s }
            return (out[0]!, out[1]!)
        }
        XCTAssertEqual(sa.logLikelihood, sb.logLikelihood)
        XCTAssertEqual(sa.distributions, sb.distributions)
        XCTAssertEqual(sa.rows, cs.rows)
        XCTAssertTrue(sa.converged)
        XCTAssertEqual(sa.logLikelihood.last!, cs.logLikelihood.last!, accuracy: 0.02 * abs(cs.logLikelihood.last!))
        // As map tasks and reduces: the sample, the EM iterations until converged, the assignments.
        let (cm, gmmPasses) = try await Self.mapReduce { shard, pass, restart in
            var o = c
            o.shard = shard; o.pass = pass; o.restart = restart
            return try await ClusterJob(options: o).run()
        }
        XCTAssertTrue(cm.converged)
        XCTAssertEqual(gmmPasses, cm.iterations + 2)
        XCTAssertEqual(cm.rows, cs.rows)
        XCTAssertEqual(cm.logLikelihood.last!, cs.logLikelihood.last!, accuracy: 0.02 * abs(cs.logLikelihood.last!))
        XCTAssertEqual(cm.distributions.count, 3)
        for row in cm.distributions { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-9) }
        // A map task after the step is complete finds it so at once.
        var late = c
        late.shard = try Shard(index: 1, count: 3); late.pass = .map
        let again2 = try await ClusterJob(options: late).run()
        XCTAssertTrue(again2.upToDate)
        let clusters = try await VolumeSource.open(run + "/clusters")
        let plane = try await clusters.read(Box([1..<2, 0..<100, 0..<130]))
        XCTAssertEqual(Set(plane).subtracting([0]), [1, 2, 3])

        // The first three PCs, smoothed, under another name (the paper's areas from PCs): ARI and V-measure as
        // scikit-learn computes them from the written array; the NMF clusters stay in place beside it.
        var a = ClusterOptions(run: run)
        a.name = "clusters_areas"; a.on = "pca"; a.components = [0, 1, 2]; a.smooth = 6; a.k = 3; a.slices = [1]
        a.rois = dir + "/ph.zarr/areas"
        let areas = try await ClusterJob(options: a).run()
        let scores = try AlgorithmTests.reference(["task": "cluster-scores", "clusters": run + "/clusters_areas",
                                                   "rois": dir + "/ph.zarr/areas", "stride": 2, "slices": [1]])
        XCTAssertEqual(areas.ari!, scores["ari"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(areas.vMeasure!.v, scores["v"] as! Double, accuracy: 1e-12)
        XCTAssertTrue(areas.resultPath.hasSuffix("/analysis/clusters_areas.json"))
        let generation = try XCTUnwrap(try Run.open(run).manifest.steps["clusters_areas"]).directory
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/" + generation + "/smoothed"), "the smoothing scratch is removed once complete")
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/analysis/clusters.json"))) is [String: Any], true)
        // Unsmoothed: the same pixels, other rows, a new generation.
        a.smooth = 0
        let unsmoothed = try await ClusterJob(options: a).run()
        XCTAssertFalse(unsmoothed.upToDate)
        XCTAssertEqual(unsmoothed.rows, areas.rows)
        XCTAssertNotEqual(unsmoothed.logLikelihood.last, areas.logLikelihood.last)
        // Oriented (--smooth-across) with diagonal covariances: each slice's direction recorded (and kept when the
        // result is up to date), covariances diagonal, the scores as scikit-learn computes them from the written array.
        var o = a
        o.name = "clusters_oriented"; o.smooth = 8; o.smoothAcross = 2; o.covariance = .diag
        let oriented = try await ClusterJob(options: o).run()
        XCTAssertEqual(Array(oriented.layerDirections.keys), [1])
        let orientedScores = try AlgorithmTests.reference(["task": "cluster-scores", "clusters": run + "/clusters_oriented",
                                                           "rois": dir + "/ph.zarr/areas", "stride": 2, "slices": [1]])
        XCTAssertEqual(oriented.ari!, orientedScores["ari"] as! Double, accuracy: 1e-12)
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: oriented.resultPath))) as! [String: Any]
        XCTAssertEqual(doc["covariance_type"] as? String, "diag")
        let covs = doc["covariances"] as! [Double]
        for c in 0..<3 { for i in 0..<3 { for j in 0..<3 where i != j { XCTAssertEqual(covs[(c * 3 + i) * 3 + j], 0) } } }
        XCTAssertNotNil((doc["layer_direction_per_slice"] as? [String: Any])?["1"])
        let orientedAgain = try await ClusterJob(options: o).run()
        XCTAssertTrue(orientedAgain.upToDate)
        XCTAssertEqual(orientedAgain.layerDirections[1]?.degrees, oriented.layerDirections[1]?.degrees)
        // --principal: the NMF clusters on the input's 2 leading principal components. The PCA is scikit-learn's on
        // the clustered pixels, and every pixel's cluster is the one scikit-learn's GaussianMixture.predict gives with
        // the written mixture on scikit-learn's projection; as map tasks and reduces (one more pass: the moments),
        // the same model.
        var pc = c
        pc.name = "clusters_principal"; pc.principal = 2
        let principal = try await ClusterJob(options: pc).run()
        XCTAssertTrue(principal.converged)
        let pcDoc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: principal.resultPath))) as! [String: Any]
        let pcRef = try AlgorithmTests.reference(["task": "cluster-principal", "run": run, "on": "nmf", "slices": [0, 1], "k": 2,
                                                  "result": principal.resultPath, "clusters": run + "/clusters_principal"])
        XCTAssertEqual(pcRef["pixels"] as? Int, principal.rows)
        let projection = pcDoc["principal_components"] as! [String: Any]
        let refVariance = pcRef["explained_variance"] as! [Double]
        XCTAssertGreaterThan(refVariance[0], 1.05 * refVariance[1], "a clear eigen-gap, so the components are determined")
        for (x, y) in zip(projection["mean"] as! [Double], pcRef["mean"] as! [Double]) { XCTAssertEqual(x, y, accuracy: 1e-9 * max(1, abs(y))) }
        for (x, y) in zip(projection["components"] as! [Double], (pcRef["components"] as! [[Double]]).joined()) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        XCTAssertEqual((pcDoc["means"] as! [Double]).count, 3 * 2, "the mixture lives in the 2 components")
        XCTAssertGreaterThanOrEqual(pcRef["agreement"] as! Double, 0.999)
        let (pcm, pcPasses) = try await Self.mapReduce { shard, pass, restart in
            var o = pc
            o.shard = shard; o.pass = pass; o.restart = restart
            return try await ClusterJob(options: o).run()
        }
        XCTAssertEqual(pcPasses, pcm.iterations + 3)
        XCTAssertEqual(pcm.rows, principal.rows)
        XCTAssertEqual(pcm.logLikelihood.last!, principal.logLikelihood.last!, accuracy: 0.02 * abs(principal.logLikelihood.last!))
        // A name that is not a cluster output, a channel the input lacks, more components than channels: refused,
        // naming the flag.
        var bad = a
        bad.name = "labels"
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("--name labels") } catch { XCTAssertTrue("\(error)".contains("--name"), "\(error)") }
        bad = a; bad.components = [5]
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("PC 6 of 5") } catch { XCTAssertTrue("\(error)".contains("--components 6"), "\(error)") }
        bad = a; bad.principal = 4
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("4 principal components of 3 PCs") } catch { XCTAssertTrue("\(error)".contains("--principal 4"), "\(error)") }
        try await Self.passTasksThatDoNotFit(run)
    }

    /// --fit-steady: the change per pixel is the same however the slice is cut into blocks (central differences,
    /// computed here from the whole slice's smoothed rows, equal what each block computes with its one-pixel ring);
    /// the smoothed rows are `rows`' own, bit for bit; the mixture is fitted on the steady fraction and every pixel
    /// is assigned; as map tasks and reduces (one more pass: the histogram) it is the same clustering.
    func testFitSteadyOnARun() async throws {
        let dir = PythonReference.tempDir("analysis-steady")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try await Self.makeRun(dir)
        let ra = try await RunArrays(root: run, context: SourceOptions())
        let features = try await ra.channels("features")
        let channels = [0, 5, 9], c = channels.count, W = ra.width
        for s in [SpatialSmoothing(sigma: 3), SpatialSmoothing(sigma: 4, across: 1.5)] {
            let along: (y: Double, x: Double)? = s.across == nil ? nil : (y: 0.6, x: 0.8)
            var image = [Int: [Double]](), ours = [Int: Double]()
            for b in ra.blocks([1]) {
                guard let m = try await PixelMask.predicted.mask(ra, b, source: nil) else { continue }
                let (x, px) = try await s.rows(ra, features, b, channels: channels, mask: m, support: { $0 != 0 }, along: along)
                let (x2, px2, change) = try await s.rowsWithChange(ra, features, b, channels: channels, mask: m, support: { $0 != 0 }, along: along)
                XCTAssertEqual(px2, px); XCTAssertEqual(x2, x)
                let w = ra.extent(b).w
                for (i, p) in px.enumerated() {
                    let q = (b.by * ra.block + p / w) * W + b.bx * ra.block + p % w
                    image[q] = Array(x[(i * c)..<((i + 1) * c)]); ours[q] = change[i]
                }
            }
            XCTAssertGreaterThan(ours.count, 5000)
            for (q, g) in ours {
                func d(_ lo: Int, _ hi: Int, _ ch: Int) -> Double {
                    switch (image[lo], image[hi]) {
                    case let (l?, h?): return (h[ch] - l[ch]) / 2
                    case let (l?, nil): return image[q]![ch] - l[ch]
                    case let (nil, h?): return h[ch] - image[q]![ch]
                    default: return 0
                    }
                }
                let x = q % W
                let left = x > 0 ? q - 1 : -1, right = x < W - 1 ? q + 1 : -1
                let ref = (0..<c).reduce(0.0) { $0 + pow(d(left, right, $1), 2) + pow(d(q - W, q + W, $1), 2) }
                XCTAssertEqual(g, ref, accuracy: 1e-12 * max(1, ref), "pixel \(q)")
            }
        }

        var o = ClusterOptions(run: run)
        o.name = "clusters_steady"; o.on = "features"; o.components = channels; o.k = 3; o.slices = [1]; o.smooth = 6; o.covariance = .diag
        o.maxIter = 30   // map tasks and reduces below run one pass per iteration
        var all = o
        all.name = "clusters_all"
        let whole = try await ClusterJob(options: all).run()
        o.fitSteady = 0.6
        let steady = try await ClusterJob(options: o).run()
        XCTAssertEqual(steady.rows, whole.rows, "every pixel is assigned")
        XCTAssertEqual(whole.fittedRows, whole.rows)
        // The fit saw the steadiest 60% (the threshold is a bin's upper edge: a little more, never less).
        XCTAssertGreaterThanOrEqual(Double(steady.fittedRows), 0.6 * Double(whole.rows))
        XCTAssertLessThanOrEqual(Double(steady.fittedRows), 0.63 * Double(whole.rows))
        XCTAssertTrue(steady.notes.contains { $0.contains("fitted on \(steady.fittedRows) of the \(whole.rows) pixels") }, "\(steady.notes)")
        XCTAssertNotEqual(steady.logLikelihood.last, whole.logLikelihood.last)
        let (mr, passes) = try await Self.mapReduce { shard, pass, restart in
            var m = o
            m.shard = shard; m.pass = pass; m.restart = restart
            return try await ClusterJob(options: m).run()
        }
        XCTAssertEqual(passes, mr.iterations + 3)
        XCTAssertEqual(mr.notes.filter { $0.hasPrefix("fitted on") }, steady.notes.filter { $0.hasPrefix("fitted on") }, "the same threshold")
        XCTAssertEqual(mr.fittedRows, steady.fittedRows)
        XCTAssertEqual(mr.logLikelihood.last!, steady.logLikelihood.last!, accuracy: 0.02 * abs(steady.logLikelihood.last!))
        var bad = o
        bad.smooth = 0
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("--fit-steady without --smooth") } catch { XCTAssertTrue("\(error)".contains("--fit-steady 0.6 needs --smooth"), "\(error)") }
        bad = o; bad.fitSteady = 1
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("--fit-steady 1") } catch { XCTAssertTrue("\(error)".contains("above 0 and below 1"), "\(error)") }
        bad = o; bad.name = "clusters_few"; bad.fitSteady = 1e-9   // fewer steady pixels than --k
        do { _ = try await ClusterJob(options: bad).run(); XCTFail("--fit-steady 1e-9") } catch { XCTAssertTrue("\(error)".contains("raise --fit-steady"), "\(error)") }
    }

    /// Map tasks and reduces that do not fit the step's generation are refused before anything changes; a reduce run
    /// again, or with other map tasks than the last pass's, does no harm (the defects a new user's probe found). On
    /// the run of the test above (its pca complete with k 5), sharing its prediction.
    static func passTasksThatDoNotFit(_ run: String) async throws {
        var p = FactorizeOptions(run: run)
        p.k = 3; p.slices = [1]
        func task(_ o: FactorizeOptions, _ shard: Shard, _ pass: PassMode) async throws -> PassEnd? {
            var o = o
            o.shard = shard; o.pass = pass
            do { _ = try await FactorizeJob(options: o).run(); return nil } catch let end as PassEnd { return end }
        }
        func failure(_ o: FactorizeOptions, _ shard: Shard, _ pass: PassMode) async -> String {
            do { _ = try await task(o, shard, pass); return "no error" } catch { return "\(error)" }
        }
        func pca() throws -> StepRecord? { try Run.inspect(run).manifest.steps["pca"] }
        func status() throws -> RunStatus.Step { try XCTUnwrap(RunStatus.of(try Run.inspect(run)).steps.first { $0.name == "pca" }) }
        let shard = { (i: Int) in try Shard(index: i, count: 3) }

        // A reduce with other parameters than the step's (complete) generation: refused, the generation kept.
        let generation = try pca()?.generation
        let other0 = await failure(p, .all, .reduce(tasks: 3))
        XCTAssertTrue(other0.contains("k: the run has 5, this command has 3") && other0.contains("Run them first"), other0)
        XCTAssertEqual(try pca()?.generation, generation)
        XCTAssertTrue(try status().complete)

        // One map task starts a new generation (other parameters than a complete step's), saying why; status names
        // the other map tasks as missing and says to run map tasks and reduces.
        let started = try await task(p, try shard(0), .map)
        XCTAssertTrue(started?.notes.joined().contains("other parameters") ?? false, "\(String(describing: started?.notes))")
        XCTAssertEqual(try status().missingShards, ["shard-1-of-3", "shard-2-of-3"])
        let advice = try RunStatus.of(try Run.inspect(run)).next.joined()
        XCTAssertTrue(advice.contains("--pass map --shard I/3"), advice)
        for i in 1..<3 { _ = try await task(p, try shard(i), .map) }
        XCTAssertEqual(try status().missingShards, [])
        // A reduce with a wrong N fails without rewriting the recorded map tasks' count.
        _ = await failure(p, .all, .reduce(tasks: 2))
        XCTAssertEqual(try pca()?.info["shards"], "3")
        // A reduce that merged but could not save the next pass's parameters has not merged it (status says so).
        let state = run + "/" + (try XCTUnwrap(try pca()).directory) + "/" + StepPasses.stateFile
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let unsaved = await failure(p, .all, .reduce(tasks: 3))
        XCTAssertTrue(unsaved.contains("cannot write"), unsaved)
        XCTAssertNil(try status().donePerShard["reduce"])
        try FileManager.default.removeItem(atPath: state)
        let merged1 = try await task(p, .all, .reduce(tasks: 3))
        XCTAssertNotNil(merged1)
        XCTAssertEqual(try status().lastPerShard["reduce"], "pca-moments")
        // Run again, the reduce finds its pass merged and exits at once (no error).
        let again = try await task(p, .all, .reduce(tasks: 3))
        XCTAssertTrue(again?.description.contains("nothing to merge") ?? false, "\(String(describing: again))")

        // Pass 2 under way: a map task with other parameters is refused, naming them; the generation is kept.
        _ = try await task(p, try shard(0), .map)
        var other = p
        other.k = 4
        let refused = await failure(other, try shard(1), .map)
        XCTAssertTrue(refused.contains("k: the run has 3, this command has 4"), refused)
        XCTAssertTrue(refused.contains("under way") && refused.contains("--restart"), refused)
        XCTAssertEqual(try pca()?.generation, generation! + 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state))
        // The reduce's missing shards: the step's recorded command with --pass map --shard I/N, for each one.
        let missing = await failure(p, .all, .reduce(tasks: 3))
        let line = try XCTUnwrap(try pca()?.info["command_line"])
        XCTAssertTrue(missing.contains(line + " --pass map --shard 1/3") && missing.contains(line + " --pass map --shard 2/3"), missing)
        for i in 1..<3 { _ = try await task(p, try shard(i), .map) }
        let finished = try await task(p, .all, .reduce(tasks: 3))
        XCTAssertNil(finished, "the last reduce finishes the step")
        XCTAssertTrue(try status().complete)
        XCTAssertEqual(try status().donePerShard["reduce"], 2)
        var late = p
        late.pass = .reduce(tasks: 3)
        let done = try await FactorizeJob(options: late).run()
        XCTAssertTrue(done.upToDate, "a reduce after the step is complete")

        // One map task a pass (--shard 0/1, reduce/1: a Kubernetes Job of one completion).
        p.k = 2
        _ = try await task(p, .all, .map)
        XCTAssertEqual(try pca()?.generation, generation! + 2)
        let one = try await task(p, .all, .reduce(tasks: 1))
        XCTAssertNotNil(one)
        _ = try await task(p, .all, .map)
        let oneFinished = try await task(p, .all, .reduce(tasks: 1))
        XCTAssertNil(oneFinished)
        XCTAssertTrue(try status().complete)

        // Cluster: pass 1 in 3 map tasks, the last pass in 2; the final reduce has the silhouette's sample.
        var c = ClusterOptions(run: run)
        c.k = 2; c.on = "pca"; c.method = .kmeans; c.slices = [1]; c.sample = 500
        func clusterTask(_ shard: Shard, _ pass: PassMode) async throws -> ClusterSummary? {
            var o = c
            o.shard = shard; o.pass = pass
            do { return try await ClusterJob(options: o).run() } catch is PassEnd { return nil }
        }
        for i in 0..<3 { _ = try await clusterTask(try shard(i), .map) }
        let pass1 = try await clusterTask(.all, .reduce(tasks: 3))
        XCTAssertNil(pass1)
        for i in 0..<2 { _ = try await clusterTask(try Shard(index: i, count: 2), .map) }
        let last = try await clusterTask(.all, .reduce(tasks: 2))
        let clustered = try XCTUnwrap(last)
        XCTAssertNotNil(clustered.silhouette)

        // EM's settings are not k-means parameters: changing them finds the k-means result up to date.
        c.reg = 1e-3; c.tol = 0.5; c.maxIter = 7
        let kmeansAgain = try await ClusterJob(options: c).run()
        XCTAssertTrue(kmeansAgain.upToDate, "\(kmeansAgain.notes)")
    }
}
