import Foundation

/// The training distribution of the latents per class, for anomaly maps (the paper's future work: find inputs whose
/// representation deviates from what the network was trained on). Per class: the mean and a shrunk covariance of
/// the 64-d latents of the training patches' centre pixels, streamed as merged moments (`Moments`).
///
/// Shrinkage keeps the inverse stable (64 dimensions, a few thousand patches per class, and ReLU latents that are
/// often exactly zero make the sample covariance near-singular): Σ̂ = (1 − α)·S + α·(tr S / d)·I, with S the sample
/// covariance (n − 1) and α = `shrinkage` (0.1 by default; the diagonal target keeps the total variance).
/// A pixel's anomaly is its Mahalanobis distance √((x − μ_c)ᵀ Σ̂_c⁻¹ (x − μ_c)) to its predicted class c, computed
/// through the precision's Cholesky factor P = L⁻ᵀ (Σ̂ = L·Lᵀ): ‖(x − μ)·P‖, one sgemm per class per block.
public struct LatentStatistics: Codable, Sendable, Equatable {
    public struct ClassModel: Codable, Sendable, Equatable {
        public var count: Double
        public var mean: [Double]
        /// The shrunk covariance Σ̂, d × d row-major.
        public var covariance: [Double]
    }

    public var d: Int
    public var shrinkage: Double
    public var classes: [ClassModel]
    /// The training epoch whose weights produced these latents (the saved model's).
    public var epoch: Int

    /// Precision Cholesky factors (upper, d × d, float32) per class; derived, not stored.
    private var precisionChol: [[Float]] = []
    enum CodingKeys: String, CodingKey { case d, shrinkage, classes, epoch }

    public init(moments: [Moments], shrinkage: Double = 0.1, epoch: Int) throws {
        guard let d = moments.first?.d else { throw LatentStatisticsError("no classes") }
        self.d = d; self.shrinkage = shrinkage; self.epoch = epoch
        classes = try moments.enumerated().map { c, m in
            guard m.count >= 2 else { throw LatentStatisticsError("class \(Self.name(c)) has \(Int(m.count)) latent samples; at least 2 are needed for a covariance") }
            let s = m.covariance
            let target = (0..<d).reduce(0.0) { $0 + s[$1 * d + $1] } / Double(d)
            var shrunk = s.map { (1 - shrinkage) * $0 }
            for i in 0..<d { shrunk[i * d + i] += shrinkage * max(target, 1e-12) }
            return ClassModel(count: m.count, mean: m.mean, covariance: shrunk)
        }
        try prepare()
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        d = try c.decode(Int.self, forKey: .d); shrinkage = try c.decode(Double.self, forKey: .shrinkage)
        classes = try c.decode([ClassModel].self, forKey: .classes); epoch = try c.decode(Int.self, forKey: .epoch)
        guard classes.allSatisfy({ $0.mean.count == d && $0.covariance.count == d * d }) else {
            throw LatentStatisticsError("latent statistics: a class's mean or covariance does not have d = \(d) (d × d) entries")
        }
        try prepare()
    }

    private mutating func prepare() throws {
        precisionChol = try classes.enumerated().map { c, m in
            guard let l = Dense.cholesky(m.covariance, d) else {
                throw LatentStatisticsError("latent statistics: class \(Self.name(c))'s covariance is not positive definite")
            }
            let li = Dense.invertLower(l, d)
            // P = L⁻ᵀ, row-major: P[i][j] = L⁻¹[j][i].
            return (0..<(d * d)).map { Float(li[($0 % d) * d + $0 / d]) }
        }
    }

    /// Mahalanobis distances of n pixels to their classes' distributions. `latents` is channel-first (d planes of
    /// `n`, as the prediction's features), `labels` 1…classes (0: not predicted → NaN). Pixels are gathered class by
    /// class into rows, centred, and multiplied by P in one sgemm.
    public func distances(latents: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, count n: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: .nan, count: n)
        var index: [[Int]] = Array(repeating: [], count: classes.count)
        for i in 0..<n where labels[i] > 0 && Int(labels[i]) <= classes.count { index[Int(labels[i]) - 1].append(i) }
        for (c, pixels) in index.enumerated() where !pixels.isEmpty {
            let m = pixels.count
            let mean = classes[c].mean.map(Float.init)
            var x = [Float](repeating: 0, count: m * d), y = [Float](repeating: 0, count: m * d)
            for j in 0..<d {
                let plane = latents + j * n, mu = mean[j]
                for (r, i) in pixels.enumerated() { x[r * d + j] = plane[i] - mu }
            }
            x.withUnsafeBufferPointer { xb in precisionChol[c].withUnsafeBufferPointer { pb in y.withUnsafeMutableBufferPointer { yb in
                BLAS.gemm(m: m, n: d, k: d, a: xb.baseAddress!, lda: d, b: pb.baseAddress!, ldb: d, c: yb.baseAddress!, ldc: d)
            } } }
            for (r, i) in pixels.enumerated() {
                var s: Float = 0
                for j in 0..<d { s += y[r * d + j] * y[r * d + j] }
                out[i] = s.squareRoot()
            }
        }
    }

    /// Class c by name (the classifier's class order), for messages.
    static func name(_ c: Int) -> String { c < AreaClassifier.classes.count ? "\(c + 1) (\(AreaClassifier.classes[c]))" : "\(c + 1)" }

    /// The statistics recorded in a model's sidecar JSON (MODEL.json beside MODEL.safetensors), under
    /// `latent_statistics`; a clear error when the file or the entry is missing or unreadable. `weightsSHA256`: the
    /// digest of the weights they will be used with; a sidecar that records other weights (`weights_sha256`, written
    /// with the statistics) belongs to another model, or to these weights before they changed, and is refused.
    public static func load(sidecarOf model: String, weightsSHA256: String? = nil) throws -> LatentStatistics {
        let path = sidecarPath(of: model)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LatentStatisticsError("the anomaly output needs the model's latent statistics, read from \(path), which does not exist; train the model with brainmap train (it writes them after the last epoch)")
        }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) }
        catch { throw LatentStatisticsError("\(path) is not valid JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error)); re-run the same train command to write it again") }
        guard let doc = parsed as? [String: Any], let entry = doc["latent_statistics"] else {
            throw LatentStatisticsError("\(path) has no latent_statistics (written by brainmap train after the last epoch); re-run the same train command to add them")
        }
        if let want = weightsSHA256, let was = doc["weights_sha256"] as? String, was != want {
            throw LatentStatisticsError("\(path)'s latent statistics were computed with weights of SHA-256 \(was.prefix(12))…, not \(model)'s (\(want.prefix(12))…): "
                                        + "the sidecar belongs to another model, or the weights changed since; re-run the train command that made \(model) to refresh it")
        }
        do { return try JSONDecoder().decode(LatentStatistics.self, from: JSONSerialization.data(withJSONObject: entry)) }
        catch let e as LatentStatisticsError { throw LatentStatisticsError("\(path): \(e.description)") }
        catch { throw LatentStatisticsError("\(path): latent_statistics cannot be read (\(error)); re-run the same train command to write them again") }
    }

    /// MODEL.safetensors → MODEL.json.
    public static func sidecarPath(of model: String) -> String {
        (model.hasSuffix(".safetensors") ? String(model.dropLast(12)) : model) + ".json"
    }
}

public struct LatentStatisticsError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
