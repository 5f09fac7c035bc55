import Foundation
import XCTest
@testable import Analysis
import NeuralNet
import TestSupport

/// The analysis algorithms against scikit-learn and scipy on data that fits in memory.
final class AlgorithmTests: XCTestCase {
    /// n rows of d columns: a mixture of 3 Gaussian blobs, shifted to be non-negative.
    static func data(n: Int, d: Int, seed: UInt64) -> [Double] {
        var rng = SeededRandom(seed: seed)
        func gauss() -> Double {
            let u = max(1e-12, Double(rng.nextFloat())), v = Double(rng.nextFloat())
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let centres = (0..<3).map { c in (0..<d).map { j in Double((c * 7 + j * 3) % 5) } }
        var x = [Double]()
        for i in 0..<n {
            let c = i % 3
            for j in 0..<d { x.append(centres[c][j] + 0.6 * gauss() * Double(1 + j % 3)) }
        }
        let m = x.min()!
        return x.map { $0 - m }
    }

    static func reference(_ request: [String: Any]) throws -> [String: Any] {
        let dir = PythonReference.tempDir("analysis")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try JSONSerialization.data(withJSONObject: request).write(to: URL(fileURLWithPath: dir + "/r.json"))
        let out = try PythonReference.run("tools/reference/sklearn_analysis.py", [dir + "/r.json"])
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
    }

    static func rows(_ x: [Double], _ d: Int) -> [[Double]] { stride(from: 0, to: x.count, by: d).map { Array(x[$0..<($0 + d)]) } }

    /// Moments merged from uneven blocks in any order equal one pass; PCA from them equals scikit-learn's.
    func testMomentsMergeAndPCAMatchScikitLearn() throws {
        let n = 3000, d = 8
        let x = Self.data(n: n, d: d, seed: 1)
        var one = Moments(d: d)
        x.withUnsafeBufferPointer { one.add($0.baseAddress!, rows: n) }
        // Three "shards" of uneven blocks, merged in another order.
        var shards = [Moments(d: d), Moments(d: d), Moments(d: d)]
        var start = 0, b = 0
        for size in [1, 700, 33, 1200, 66] {
            x.withUnsafeBufferPointer { shards[b % 3].add($0.baseAddress! + start * d, rows: size) }
            start += size; b += 1
        }
        x.withUnsafeBufferPointer { shards[1].add($0.baseAddress! + start * d, rows: n - start) }
        var merged = shards[2]; merged.merge(shards[0]); merged.merge(shards[1])
        XCTAssertEqual(merged.count, one.count)
        for i in 0..<d { XCTAssertEqual(merged.mean[i], one.mean[i], accuracy: 1e-12) }
        for i in 0..<(d * d) { XCTAssertEqual(merged.comoment[i], one.comoment[i], accuracy: 1e-9 * abs(one.comoment[i]) + 1e-9) }
        XCTAssertEqual(merged.min, one.min); XCTAssertEqual(merged.max, one.max)

        let pca = PCAModel(moments: merged, k: 5)
        let ref = try Self.reference(["task": "pca", "X": Self.rows(x, d), "k": 5])
        let comps = (ref["components"] as! [[Double]]).joined().map { $0 }
        for i in comps.indices { XCTAssertEqual(pca.components[i], comps[i], accuracy: 1e-8, "component entry \(i)") }
        for (a, b) in zip(pca.explainedVariance, ref["explained_variance"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-9 * b) }
        for (a, b) in zip(pca.explainedVarianceRatio, ref["explained_variance_ratio"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-10) }
    }

    /// From the same NNDSVDa initialisation, brainmap's HALS reaches an objective within 1% of scikit-learn's batch
    /// NMF (solver "cd"); the streamed version (a sample fit, then full passes) too.
    func testNMFObjectiveWithinOnePercentOfScikitLearn() throws {
        let n = 4000, d = 10, k = 4
        let x = Self.data(n: n, d: d, seed: 2)
        var (w, h) = NMF.nndsvda(x, rows: n, d: d, k: k)
        let w0 = w, h0 = h
        let history = NMF.fit(x, rows: n, d: d, k: k, w: &w, h: &h, maxIter: 200, tol: 1e-6)
        let ref = try Self.reference(["task": "nmf", "X": Self.rows(x, d), "k": k, "W0": Self.rows(w0, k), "H0": Self.rows(h0, d),
                                      "max_iter": 200, "tol": 1e-4])
        let sk = ref["objective"] as! Double
        let ours = history.last!
        XCTAssertLessThanOrEqual(ours, 1.01 * sk, "brainmap \(ours) vs scikit-learn \(sk)")
        XCTAssertTrue(zip(history, history.dropFirst()).allSatisfy { $1 <= $0 * (1 + 1e-12) }, "HALS never increases the objective")
        XCTAssertTrue(h.allSatisfy { $0 >= 0 } && w.allSatisfy { $0 >= 0 })

        // Streamed: H from a 25% sample, then two passes over all rows in blocks (statistics merged), W by NNLS.
        let sampleRows = stride(from: 0, to: n, by: 4).map { $0 }
        let sample = sampleRows.flatMap { x[($0 * d)..<(($0 + 1) * d)] }
        var (ws, hs) = NMF.nndsvda(sample, rows: sampleRows.count, d: d, k: k)
        NMF.fit(sample, rows: sampleRows.count, d: d, k: k, w: &ws, h: &hs)
        var objective = 0.0
        for pass in 0..<3 {
            var stats = NMFStatistics(k: k, d: d)
            for b in stride(from: 0, to: n, by: 1000) {
                x.withUnsafeBufferPointer { xb in
                    let coef = NMF.coefficients(xb.baseAddress! + b * d, rows: 1000, d: d, h: hs, k: k)
                    stats.add(x: xb.baseAddress! + b * d, w: coef, rows: 1000)
                }
            }
            objective = stats.objective(hs)
            if pass < 2 { hs = stats.updated(hs) }
        }
        XCTAssertLessThanOrEqual(objective, 1.01 * sk, "streamed \(objective) vs scikit-learn \(sk)")
    }

    /// Each row's coefficients are the exact NNLS solution (scipy.optimize.nnls), active constraints included.
    func testCoefficientsAreExactNNLS() throws { try checkCoefficients(rowScales: [1, 1, 1, 1, 1, 1]) }

    /// The same when H's rows differ in scale by 3·10⁵ (in the demo's third model HHᵀ's diagonal spans 750 to
    /// 3.7·10⁷): with tolerances set by the largest row (1e-10 · max diag), the small row's gradient never passed
    /// them, so its coefficients stayed 0 where scipy's are not (on the demo's model, the large row's own coefficients
    /// fell under the same tolerance and were dropped, and ½‖x − wH‖² per row was 2.3× scipy's).
    func testCoefficientsAreExactNNLSWhenRowsDifferInScale() throws { try checkCoefficients(rowScales: [3000, 1, 0.01, 1, 30, 1]) }

    func checkCoefficients(rowScales: [Double]) throws {
        let n = 200, d = 12, k = rowScales.count
        let x = Self.data(n: n, d: d, seed: 6)
        var rng = SeededRandom(seed: 8)
        let h = (0..<(k * d)).map { i in Double(rng.nextFloat()) * (rng.next(below: 3) == 0 ? 0 : 1) * rowScales[i / d] }
        let w = x.withUnsafeBufferPointer { NMF.coefficients($0.baseAddress!, rows: n, d: d, h: h, k: k) }
        let ref = try Self.reference(["task": "nnls", "X": Self.rows(x, d), "H": Self.rows(h, d)])
        let rw = (ref["W"] as! [[Double]]).joined().map { $0 }
        // Compared as each row's contribution w·‖h‖ (what the fit sees, in the data's units), relative for rows of
        // norm above 1.
        let norms = (0..<k).map { j in (0..<d).reduce(0.0) { $0 + h[j * d + $1] * h[j * d + $1] }.squareRoot() }
        for i in rw.indices {
            XCTAssertEqual(w[i] * norms[i % k], rw[i] * norms[i % k], accuracy: 1e-8 * max(1, norms[i % k]), "w[\(i / k)][\(i % k)]")
        }
        XCTAssertGreaterThan(rw.filter { $0 == 0 }.count, 10, "the fixture must have active constraints")
    }

    /// EM from the same initial parameters: weights, means and log-likelihood as scikit-learn's GaussianMixture.
    func testGaussianMixtureMatchesScikitLearn() throws { try checkGaussianMixture(diagonal: false) }

    /// The same with diagonal covariances (covariance_type "diag").
    func testDiagonalGaussianMixtureMatchesScikitLearn() throws { try checkGaussianMixture(diagonal: true) }

    func checkGaussianMixture(diagonal: Bool) throws {
        let n = 3000, d = 4, k = 3
        let x = Self.data(n: n, d: d, seed: 3)
        let (centroids, labels) = KMeans.fit(x, rows: n, d: d, k: k, seed: 5)
        // Initial parameters from the k-means partition (one hard M-step), as GaussianMixture's kmeans init.
        var s = GMMStatistics(k: k, d: d)
        for i in 0..<n {
            s.resp[labels[i]] += 1
            for a in 0..<d {
                s.sumX[labels[i] * d + a] += x[i * d + a]
                for b in 0..<d { s.sumXX[(labels[i] * d + a) * d + b] += x[i * d + a] * x[i * d + b] }
            }
        }
        _ = centroids
        var model = try GaussianMixture.maximization(s, reg: 1e-6, diagonal: diagonal)
        let initial = model
        if diagonal { for c in 0..<k { for i in 0..<d { for j in 0..<d where i != j { XCTAssertEqual(model.covariances[(c * d + i) * d + j], 0) } } } }
        var previous = -Double.infinity, iterations = 0, lowerBound = 0.0
        for _ in 0..<100 {
            var st = GMMStatistics(k: k, d: d)
            x.withUnsafeBufferPointer { st.add(x: $0.baseAddress!, rows: n, model: model) }
            model = try GaussianMixture.maximization(st, reg: 1e-6, diagonal: diagonal)
            iterations += 1
            lowerBound = st.logLikelihood / st.rows
            if abs(lowerBound - previous) < 1e-3 { break }
            previous = lowerBound
        }
        var final = GMMStatistics(k: k, d: d)
        x.withUnsafeBufferPointer { final.add(x: $0.baseAddress!, rows: n, model: model) }
        // scikit-learn takes diagonal covariances as k × d variances, full ones as k × d × d.
        var covariances: [Any] = []
        for c in 0..<k {
            let block = Array(initial.covariances[(c * d * d)..<((c + 1) * d * d)])
            covariances.append(diagonal ? (0..<d).map { block[$0 * d + $0] } as Any : Self.rows(block, d) as Any)
        }
        let ref = try Self.reference(["task": "gmm", "X": Self.rows(x, d), "weights": initial.weights, "means": Self.rows(initial.means, d),
                                      "covariances": covariances, "covariance_type": diagonal ? "diag" : "full"])
        XCTAssertEqual(iterations, ref["n_iter"] as! Int)
        for (a, b) in zip(model.weights, ref["weights"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        for (a, b) in zip(model.means, (ref["means"] as! [[Double]]).joined()) { XCTAssertEqual(a, b, accuracy: 1e-8) }
        XCTAssertEqual(final.logLikelihood / final.rows, ref["score"] as! Double, accuracy: 1e-9)
        XCTAssertEqual(lowerBound, ref["lower_bound"] as! Double, accuracy: 1e-9)
        let predicted = x.withUnsafeBufferPointer { model.predict($0.baseAddress!, rows: n) }
        XCTAssertEqual(predicted, ref["predict"] as! [Int])
    }

    /// Random planes (c × H × W) and a support (1 where `inside(y, x)`), as the reference takes them: planes as
    /// c × H × W and the support as H × W nested arrays.
    static func smoothingWindow(c: Int, H: Int, W: Int, seed: UInt64, inside: (Int, Int) -> Bool)
        -> (planes: [Double], support: [Double], planeGrid: [[[Double]]], supportGrid: [[Double]]) {
        var rng = SeededRandom(seed: seed)
        let planes = (0..<(c * H * W)).map { _ in Double(rng.nextFloat()) * 10 }
        let support = (0..<(H * W)).map { inside($0 / W, $0 % W) ? 1.0 : 0 }
        return (planes, support, (0..<c).map { ch in (0..<H).map { y in Array(planes[(ch * H * W + y * W)..<(ch * H * W + (y + 1) * W)]) } },
                (0..<H).map { Array(support[($0 * W)..<(($0 + 1) * W)]) })
    }

    /// The normalised Gaussian mean within a support = scipy.ndimage.gaussian_filter(x·m) / gaussian_filter(m), at the
    /// target pixels of a window (the window's outside counts as no support, scipy's mode "constant").
    func testSpatialSmoothingMatchesScipy() throws {
        let c = 2, H = 31, W = 40, oy = 6, ox = 9, h = 20, w = 22, sigma = 2.5
        // A support with a hole and a ragged edge; the target's pixels on it.
        let (planes, support, planeGrid, supportGrid) = Self.smoothingWindow(c: c, H: H, W: W, seed: 5) { y, x in x + y / 3 > 12 && !(10..<14).contains(y) }
        let pixels = (0..<(h * w)).filter { support[($0 / w + oy) * W + $0 % w + ox] > 0 }
        let s = SpatialSmoothing(sigma: sigma)
        XCTAssertEqual(s.radius, 10)
        let ours = s.smooth(planes, channels: c, H: H, W: W, support: support, oy: oy, ox: ox, h: h, w: w, pixels: pixels)
        let ref = try Self.reference(["task": "smooth", "sigma": sigma, "support": supportGrid, "planes": planeGrid])
        let sm = ref["smoothed"] as! [[[Double]]]
        XCTAssertGreaterThan(pixels.count, 200)
        for (i, p) in pixels.enumerated() { for ch in 0..<c {
            XCTAssertEqual(ours[i * c + ch], sm[ch][p / w + oy][p % w + ox], accuracy: 1e-9, "pixel \(p) channel \(ch)")
        } }
    }

    /// The oriented mean: along an axis it is scipy's separable gaussian_filter with σ (along, across) or (across,
    /// along); at 30° it equals Gaussians sampled on interpolated lines (scipy.ndimage.map_coordinates), normalised
    /// within the support in both cases.
    func testOrientedSmoothingMatchesScipy() throws {
        let c = 2, H = 41, W = 47, oy = 9, ox = 11, h = 22, w = 24, along = 3.0, across = 1.2
        let (planes, support, grid, rows) = Self.smoothingWindow(c: c, H: H, W: W, seed: 8) { y, x in x + y / 2 > 14 && !(18..<21).contains(y) }
        let pixels = (0..<(h * w)).filter { support[($0 / w + oy) * W + $0 % w + ox] > 0 }
        XCTAssertGreaterThan(pixels.count, 300)
        let s = SpatialSmoothing(sigma: along, across: across)
        let angle = 30.0 * .pi / 180
        let cases: [((y: Double, x: Double), [String: Any])] = [
            ((y: 1, x: 0), ["task": "smooth", "sigma": [along, across], "support": rows, "planes": grid]),
            ((y: 0, x: 1), ["task": "smooth", "sigma": [across, along], "support": rows, "planes": grid]),
            ((y: sin(angle), x: cos(angle)), ["task": "smooth-oriented", "sigma_along": along, "sigma_across": across,
                                              "along": [sin(angle), cos(angle)], "support": rows, "planes": grid]),
        ]
        for (u, request) in cases {
            let ours = s.oriented(planes, channels: c, H: H, W: W, support: support, oy: oy, ox: ox, h: h, w: w, pixels: pixels, along: u)
            let sm = try Self.reference(request)["smoothed"] as! [[[Double]]]
            for (i, p) in pixels.enumerated() { for ch in 0..<c {
                XCTAssertEqual(ours[i * c + ch], sm[ch][p / w + oy][p % w + ox], accuracy: 1e-9, "along \(u), pixel \(p) channel \(ch)")
            } }
        }
        // The isotropic case of the same struct is unchanged: reach = radius without `across`.
        XCTAssertEqual(SpatialSmoothing(sigma: along).reach, SpatialSmoothing(sigma: along).radius)
        XCTAssertEqual(s.reach, 12 + 5 + 2)
    }

    /// Stripes that change along 30° (from x towards y): the structure tensor's layers run perpendicular, at 120°,
    /// with coherence near 1; an input that does not change has no direction.
    func testLayerDirectionFromStructureTensor() throws {
        let H = 60, W = 70, angle = 30.0 * .pi / 180
        let planes = (0..<(H * W)).map { i -> Double in
            let y = Double(i / W), x = Double(i % W)
            return sin(2 * .pi * (x * cos(angle) + y * sin(angle)) / 14)
        }
        let s = SpatialSmoothing(sigma: 6, across: 1.5)
        let support = [Double](repeating: 1, count: H * W)
        let j = s.tensor(planes, channels: 1, H: H, W: W, support: support, oy: 10, ox: 10, h: 40, w: 50, mask: [Bool](repeating: true, count: 2000))
        let (u, coherence) = try XCTUnwrap(SpatialSmoothing.layerDirection(j))
        XCTAssertEqual(abs(u.y * sin(angle) + u.x * cos(angle)), 0, accuracy: 0.01, "along \(u) is perpendicular to the stripes' gradient")
        XCTAssertGreaterThan(coherence, 0.95)
        XCTAssertNil(SpatialSmoothing.layerDirection(s.tensor([Double](repeating: 0, count: H * W), channels: 1, H: H, W: W, support: support,
                                                               oy: 10, ox: 10, h: 40, w: 50, mask: [Bool](repeating: true, count: 2000))))
    }

    /// Each channel votes once: three channels of stripes changing along 30° and one ten times louder changing along
    /// 120° (a factor that does not follow the layers) give layers along 120° — the majority's — where the raw sum of
    /// the tensors would follow the loud channel (its energy is 100× each other's) and give 30°.
    func testLayerDirectionGivesEachChannelOneVote() throws {
        let H = 60, W = 70
        func stripes(_ degrees: Double, _ amplitude: Double) -> [Double] {
            let a = degrees * .pi / 180
            return (0..<(H * W)).map { i in
                amplitude * sin(2 * .pi * (Double(i % W) * cos(a) + Double(i / W) * sin(a)) / 14)
            }
        }
        let planes = stripes(30, 1) + stripes(30, 1) + stripes(30, 1) + stripes(120, 10)
        let s = SpatialSmoothing(sigma: 6, across: 1.5)
        let j = s.tensor(planes, channels: 4, H: H, W: W, support: [Double](repeating: 1, count: H * W), oy: 10, ox: 10,
                         h: 40, w: 50, mask: [Bool](repeating: true, count: 2000))
        XCTAssertEqual(j.count, 12)
        let (u, coherence) = try XCTUnwrap(SpatialSmoothing.layerDirection(j))
        let a = 30.0 * .pi / 180
        XCTAssertEqual(abs(u.y * sin(a) + u.x * cos(a)), 0, accuracy: 0.02, "along \(u) is perpendicular to the majority's gradient")
        XCTAssertEqual(coherence, 0.5, accuracy: 0.05, "three votes against one")
        let raw = [j[0] + j[3] + j[6] + j[9], j[1] + j[4] + j[7] + j[10], j[2] + j[5] + j[8] + j[11]]
        let (v, _) = try XCTUnwrap(SpatialSmoothing.layerDirection(raw))
        XCTAssertEqual(abs(v.y * sin(a) + v.x * cos(a)), 1, accuracy: 0.02, "summed raw, the loud channel decides")
    }

    /// JS distance, ARI, V-measure, silhouette and the one-to-one assignment as scipy and scikit-learn compute them.
    func testMetricsMatchScipyAndScikitLearn() throws {
        var rng = SeededRandom(seed: 9)
        let truth = (0..<500).map { _ in rng.next(below: 4) }
        let pred = truth.map { rng.next(below: 10) < 7 ? ($0 + 1) % 4 : rng.next(below: 5) }
        let n = 300, d = 3
        let x = Self.data(n: n, d: d, seed: 4)
        let labels = (0..<n).map { $0 % 3 }
        let pairs: [([Double], [Double])] = [([1, 2, 3, 0], [0, 2, 3, 1]), ([0.1, 0.9], [0.5, 0.5]), ([5, 0, 0], [0, 0, 5]), ([1, 1], [1, 1])]
        var cost: [[Double]] = []
        for i in 0..<4 {
            var row: [Double] = []
            for j in 0..<5 { row.append(Double((i * 7 + j * 3) % 11) + (i == j ? 0 : 1)) }
            cost.append(row)
        }
        let ref = try Self.reference(["task": "metrics", "truth": truth, "pred": pred, "X": Self.rows(x, d), "labels": labels,
                                      "pairs": pairs.map { [$0.0, $0.1] }, "cost": cost])
        XCTAssertEqual(ClusterMetrics.adjustedRand(truth, pred), ref["ari"] as! Double, accuracy: 1e-12)
        let v = ClusterMetrics.vMeasure(truth, pred)
        XCTAssertEqual(v.homogeneity, ref["homogeneity"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(v.completeness, ref["completeness"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(v.v, ref["v"] as! Double, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(ClusterMetrics.silhouette(x, rows: n, d: d, labels: labels)), ref["silhouette"] as! Double, accuracy: 1e-10)
        // Where scikit-learn refuses (one cluster; every row its own) there is none; identical rows score 0, not NaN.
        XCTAssertNil(ClusterMetrics.silhouette([0, 1, 2, 3], rows: 4, d: 1, labels: [1, 1, 1, 1]))
        XCTAssertNil(ClusterMetrics.silhouette([0, 1, 2], rows: 3, d: 1, labels: [0, 1, 2]))
        XCTAssertEqual(ClusterMetrics.silhouette([5, 5, 5, 5], rows: 4, d: 1, labels: [0, 0, 1, 1]), 0)
        XCTAssertEqual(ClusterMetrics.adjustedRand([], []), 1)
        XCTAssertEqual(ClusterMetrics.adjustedRand([3], [0]), 1)
        for (p, js) in zip(pairs, ref["js"] as! [Double]) { XCTAssertEqual(ClusterMetrics.jensenShannon(p.0, p.1), js, accuracy: 1e-12) }
        let assignment = ClusterMetrics.hungarian(cost)
        XCTAssertEqual(assignment, ref["assignment"] as! [Int])
    }

    /// Clusters absent from one slice are left out of the matching (the probe found them "matched" at JS 1.0).
    func testMatchingLeavesAbsentClustersOut() {
        // Slice A: clusters 0 and 2 present (cluster 1 empty); slice B: clusters 1 and 2 present.
        let da: [[Double]] = [[10, 0, 0], [0, 0, 0], [0, 0, 8]], db: [[Double]] = [[0, 0, 0], [9, 1, 0], [0, 1, 9]]
        let m = ClusterMetrics.match(da, db)
        XCTAssertEqual(m.argmin, [1, -1, 2])
        XCTAssertEqual(m.oneToOne, [1, -1, 2])
        XCTAssertEqual(m.js[1], [1, 1, 1])
        XCTAssertEqual(m.js[0][1], ClusterMetrics.jensenShannon(da[0], db[1]))
        // More clusters in A than in B: the closest A cluster gets B's only one, the other none.
        let one = ClusterMetrics.match([[10, 0], [6, 4]], [[0, 0], [5, 5]])
        XCTAssertEqual(one.argmin, [1, 1])
        XCTAssertEqual(one.oneToOne, [-1, 1])
        // Nothing in B: nothing matched.
        XCTAssertEqual(ClusterMetrics.match([[1, 0]], [[0, 0]]).argmin, [-1])
    }
}

/// Any prefix of a reservoir is a uniform sample of the stream (what a merge of map tasks' samples relies on): with
/// the rows kept in random order, no row is likelier than another to be in the first t slots.
final class RowReservoirTests: XCTestCase {
    func testEveryPrefixIsUniform() {
        let n = 50, size = 20, t = 5, trials = 20_000
        var hits = [Int](repeating: 0, count: n)
        for s in 0..<trials {
            var r = RowReservoir(size: size, d: 1, rng: SeededRandom(seed: UInt64(s), stream: 1, index: 0))
            r.add((0..<n).map(Double.init), rows: n)
            for v in r.rows.prefix(t) { hits[Int(v)] += 1 }
        }
        // Expected t/n·trials = 2,000 per row (sd ≈ 42); without the shuffle rows 0–4 would be in it 8,000 times.
        for (row, h) in hits.enumerated() { XCTAssertEqual(Double(h), 2000, accuracy: 250, "row \(row)") }
    }

    /// A mask recorded in a step's parameters reads back as the same mask; what is not a labels mask is a source path.
    func testPixelMaskReadsBackItsRecord() {
        for m: PixelMask in [.predicted, .within(classID: 1, erode: 0), .within(classID: 3, erode: 64), .source("/data/m.zarr/roi")] {
            XCTAssertEqual(PixelMask(recorded: m.description), m, m.description)
        }
        for odd in ["labels == 300", "labels == 2 eroded by x px", "labels == 2 eroded by 0 px", "labelsX", "labels == 2 eroded by 5"] {
            XCTAssertEqual(PixelMask(recorded: odd), .source(odd), odd)
        }
    }

    /// The change histogram's quantile is the upper edge of the exact quantile's bin: never below it, at most a
    /// bin (10^(1/200), 1.2%) above; merged histograms count as one; zeros and NaN as documented.
    func testChangeHistogramQuantile() {
        var rng = SeededRandom(seed: 4)
        let values = (0..<20_000).map { _ in pow(10, 6 * Double(rng.nextFloat()) - 4) }
        var a = ChangeHistogram(), b = ChangeHistogram(), whole = ChangeHistogram()
        a.add(Array(values[..<7000])); b.add(Array(values[7000...])); whole.add(values)
        a.merge(b)
        XCTAssertEqual(a.counts, whole.counts)
        XCTAssertEqual(a.total, values.count)
        let sorted = values.sorted()
        for q in [0.1, 0.5, 0.7, 0.95] {
            let exact = sorted[Int((q * Double(values.count)).rounded(.up)) - 1]
            let t = a.quantile(q)
            XCTAssertGreaterThanOrEqual(t, exact, "q \(q)")
            XCTAssertLessThanOrEqual(t, exact * pow(10, 1.0 / 200) * (1 + 1e-12), "q \(q)")
            XCTAssertGreaterThanOrEqual(Double(values.filter { $0 <= t }.count), q * Double(values.count))
        }
        var z = ChangeHistogram()
        z.add([0, 0, .nan, 1e30, .infinity])
        XCTAssertEqual(z.total, 4)
        XCTAssertEqual(z.counts.first, 2); XCTAssertEqual(z.counts.last, 2)
        // 7% of 100 distinct values is 7 of them, though 0.07 × 100 is 7.000000000000001 in floating point.
        var hundred = ChangeHistogram()
        hundred.add((1...100).map { pow(10, Double($0) / 10 + 0.0025) })   // each in the middle of its 1/200-decade bin
        XCTAssertEqual(hundred.quantile(0.07), pow(10, 0.705), accuracy: 1e-9, "the 7th value's bin edge, not the 8th's (10^0.805)")
    }
}
