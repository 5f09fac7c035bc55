import Foundation
import NeuralNet

/// k-means (k-means++ seeding, Lloyd iterations) on rows in memory — a sample, for GMM initialisation and for the
/// k-means clustering with its silhouette.
public enum KMeans {
    /// Centroids (k × d) and labels. Seeding as scikit-learn's k-means++ (2 + ⌊ln k⌋ local trials per centre).
    public static func fit(_ x: [Double], rows n: Int, d: Int, k: Int, seed: UInt64, maxIter: Int = 300, tol: Double = 1e-4)
        -> (centroids: [Double], labels: [Int]) {
        var rng = SeededRandom(seed: seed)
        func dist2(_ i: Int, _ c: [Double], _ j: Int) -> Double {
            var s = 0.0
            for t in 0..<d { let v = x[i * d + t] - c[j * d + t]; s += v * v }
            return s
        }
        let first = rng.next(below: n)
        var centers = Array(x[(first * d)..<((first + 1) * d)])
        var closest = (0..<n).map { dist2($0, centers, 0) }
        let trials = 2 + Int(log(Double(k)))
        for _ in 1..<k {
            let pot = closest.reduce(0, +)
            var best = -1, bestPot = Double.infinity, bestClosest = closest
            for _ in 0..<trials {
                // Sample a candidate with probability ∝ its squared distance to the nearest centre.
                var r = Double(rng.nextFloat()) * pot, cand = n - 1
                for i in 0..<n { r -= closest[i]; if r <= 0 { cand = i; break } }
                let c = Array(x[(cand * d)..<((cand + 1) * d)])
                var newClosest = closest, p = 0.0
                for i in 0..<n { newClosest[i] = min(closest[i], dist2(i, c, 0)); p += newClosest[i] }
                if p < bestPot { bestPot = p; best = cand; bestClosest = newClosest }
            }
            centers += x[(best * d)..<((best + 1) * d)]
            closest = bestClosest
        }
        var labels = [Int](repeating: 0, count: n)
        let scale = (0..<d).reduce(0.0) { acc, t in
            let m = (0..<n).reduce(0.0) { $0 + x[$1 * d + t] } / Double(n)
            return acc + (0..<n).reduce(0.0) { $0 + (x[$1 * d + t] - m) * (x[$1 * d + t] - m) } / Double(n)
        } / Double(d)
        for _ in 0..<maxIter {
            for i in 0..<n { labels[i] = (0..<k).min { dist2(i, centers, $0) < dist2(i, centers, $1) }! }
            var sums = [Double](repeating: 0, count: k * d), counts = [Int](repeating: 0, count: k)
            for i in 0..<n { counts[labels[i]] += 1; for t in 0..<d { sums[labels[i] * d + t] += x[i * d + t] } }
            var shift = 0.0
            for c in 0..<k where counts[c] > 0 {
                for t in 0..<d {
                    let v = sums[c * d + t] / Double(counts[c])
                    shift += (v - centers[c * d + t]) * (v - centers[c * d + t])
                    centers[c * d + t] = v
                }
            }
            if shift <= tol * scale { break }
        }
        for i in 0..<n { labels[i] = (0..<k).min { dist2(i, centers, $0) < dist2(i, centers, $1) }! }
        return (centers, labels)
    }
}

/// Clustering and distribution metrics, with scikit-learn's and scipy's definitions.
public enum ClusterMetrics {
    /// Jensen–Shannon distance (scipy.spatial.distance.jensenshannon, natural log): √(½KL(p‖m) + ½KL(q‖m)), m = (p+q)/2,
    /// after normalising p and q to sum 1.
    public static func jensenShannon(_ p: [Double], _ q: [Double]) -> Double {
        let sp = p.reduce(0, +), sq = q.reduce(0, +)
        var js = 0.0
        for i in p.indices {
            let a = p[i] / sp, b = q[i] / sq, m = (a + b) / 2
            if a > 0 { js += 0.5 * a * log(a / m) }
            if b > 0 { js += 0.5 * b * log(b / m) }
        }
        return max(0, js).squareRoot()
    }

    static func contingency(_ a: [Int], _ b: [Int]) -> (table: [[Int]], n: Int) {
        let ka = (a.max() ?? 0) + 1, kb = (b.max() ?? 0) + 1
        var t = [[Int]](repeating: [Int](repeating: 0, count: kb), count: ka)
        for (x, y) in zip(a, b) { t[x][y] += 1 }
        return (t, a.count)
    }

    /// Adjusted Rand index (sklearn.metrics.adjusted_rand_score); labels are 0-based integers.
    public static func adjustedRand(_ truth: [Int], _ pred: [Int]) -> Double { adjustedRand(table: contingency(truth, pred).table) }

    /// The same from a contingency table (rows: true classes, columns: clusters), which streams.
    public static func adjustedRand(table t: [[Int]]) -> Double {
        let n = t.joined().reduce(0, +)
        guard n > 1 else { return 1 }   // scikit-learn's limit case: no pair to disagree on
        func c2(_ v: Int) -> Double { Double(v) * Double(v - 1) / 2 }
        let sumComb = t.joined().reduce(0.0) { $0 + c2($1) }
        let rows = t.map { $0.reduce(0, +) }, cols = (0..<(t.first?.count ?? 0)).map { j in t.reduce(0) { $0 + $1[j] } }
        let sa = rows.reduce(0.0) { $0 + c2($1) }, sb = cols.reduce(0.0) { $0 + c2($1) }
        let expected = sa * sb / c2(n), maxIndex = (sa + sb) / 2
        if maxIndex == expected { return 1 }
        return (sumComb - expected) / (maxIndex - expected)
    }

    /// Homogeneity, completeness and V-measure (β = 1), sklearn.metrics.homogeneity_completeness_v_measure.
    public static func vMeasure(_ truth: [Int], _ pred: [Int]) -> (homogeneity: Double, completeness: Double, v: Double) {
        vMeasure(table: contingency(truth, pred).table)
    }

    /// The same from a contingency table (rows: true classes, columns: clusters).
    public static func vMeasure(table t: [[Int]]) -> (homogeneity: Double, completeness: Double, v: Double) {
        let N = Double(t.joined().reduce(0, +))
        func entropy(_ counts: [Int]) -> Double {
            counts.reduce(0.0) { $1 > 0 ? $0 - Double($1) / N * log(Double($1) / N) : $0 }
        }
        let rows = t.map { $0.reduce(0, +) }, cols = (0..<(t.first?.count ?? 0)).map { j in t.reduce(0) { $0 + $1[j] } }
        let hC = entropy(rows), hK = entropy(cols)
        var mi = 0.0
        for i in t.indices { for j in t[i].indices where t[i][j] > 0 {
            let nij = Double(t[i][j])
            mi += nij / N * log(N * nij / (Double(rows[i]) * Double(cols[j])))
        } }
        let h = hC == 0 ? 1 : mi / hC, c = hK == 0 ? 1 : mi / hK
        return (h, c, h + c == 0 ? 0 : 2 * h * c / (h + c))
    }

    /// Mean silhouette coefficient (sklearn.metrics.silhouette_score, Euclidean), O(n²): run it on a sample.
    /// nil where scikit-learn refuses: fewer than 2 clusters occupied, or every row its own cluster.
    public static func silhouette(_ x: [Double], rows n: Int, d: Int, labels: [Int]) -> Double? {
        let k = (labels.max() ?? 0) + 1
        var counts = [Int](repeating: 0, count: k)
        for l in labels { counts[l] += 1 }
        let occupied = counts.filter { $0 > 0 }.count
        guard occupied >= 2 && occupied < n else { return nil }
        var total = 0.0
        for i in 0..<n {
            var sums = [Double](repeating: 0, count: k)
            for j in 0..<n where j != i {
                var s = 0.0
                for t in 0..<d { let v = x[i * d + t] - x[j * d + t]; s += v * v }
                sums[labels[j]] += s.squareRoot()
            }
            let own = labels[i]
            guard counts[own] > 1 else { continue }   // a singleton scores 0
            let a = sums[own] / Double(counts[own] - 1)
            var b = Double.infinity
            for c in 0..<k where c != own && counts[c] > 0 { b = min(b, sums[c] / Double(counts[c])) }
            let m = max(a, b)
            total += m > 0 ? (b - a) / m : 0   // identical rows: 0, as scikit-learn's nan_to_num
        }
        return total / Double(n)
    }

    /// Slice A's clusters matched to slice B's by the JS distance of their per-ROI distributions (`da`, `db`: per
    /// cluster, pixel counts per ROI). A cluster with no pixel in its slice has nothing to match: its row (or column)
    /// of distances is 1 (the largest), its argmin and one-to-one partner −1, and it takes no part in the one-to-one
    /// assignment, which runs over the clusters present in both (a JS of 1 would otherwise pair absent clusters
    /// arbitrarily, as "→ 1 (JS 1.0000)").
    public static func match(_ da: [[Double]], _ db: [[Double]]) -> (js: [[Double]], argmin: [Int], oneToOne: [Int]) {
        let inA = da.indices.filter { da[$0].reduce(0, +) > 0 }, inB = db.indices.filter { db[$0].reduce(0, +) > 0 }
        let js = da.map { p in db.map { q in p.reduce(0, +) > 0 && q.reduce(0, +) > 0 ? jensenShannon(p, q) : 1 } }
        var argmin = [Int](repeating: -1, count: da.count), oneToOne = argmin
        guard !inB.isEmpty else { return (js, argmin, oneToOne) }
        for i in inA { argmin[i] = inB.min { js[i][$0] < js[i][$1] }! }
        let sub = inA.map { i in inB.map { js[i][$0] } }
        if inA.count <= inB.count {
            for (r, c) in hungarian(sub).enumerated() where c >= 0 { oneToOne[inA[r]] = inB[c] }
        } else {   // more clusters present in A than in B: assign B's to A's
            let t = inB.indices.map { c in inA.indices.map { sub[$0][c] } }
            for (c, r) in hungarian(t).enumerated() where r >= 0 { oneToOne[inA[r]] = inB[c] }
        }
        return (js, argmin, oneToOne)
    }

    /// Minimum-cost one-to-one assignment of rows to columns (Hungarian / Kuhn–Munkres, rows ≤ columns): the column of
    /// each row.
    public static func hungarian(_ cost: [[Double]]) -> [Int] {
        let n = cost.count, m = cost.first?.count ?? 0
        precondition(n <= m, "more rows than columns")
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var p = [Int](repeating: 0, count: m + 1), way = [Int](repeating: 0, count: m + 1)
        for i in 1...max(1, n) where n > 0 {
            p[0] = i
            var j0 = 0
            var minv = [Double](repeating: .infinity, count: m + 1), used = [Bool](repeating: false, count: m + 1)
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...m where !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j }
                }
                for j in 0...m {
                    if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                }
                j0 = j1
            } while p[j0] != 0
            repeat { let j1 = way[j0]; p[j0] = p[j1]; j0 = j1 } while j0 != 0
        }
        var out = [Int](repeating: -1, count: n)
        for j in 1...max(1, m) where m > 0 && p[j] > 0 { out[p[j] - 1] = j - 1 }
        return out
    }
}
