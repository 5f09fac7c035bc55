import Foundation
import NeuralNet

/// On-the-fly augmentation of training patches (`train --augment`), for a model that generalises to slices and
/// samples whose intensities differ from the training slices'. Each patch's transform is drawn from
/// (seed, epoch, position in the epoch) alone, so training stays deterministic for a seed and thread count.
///
/// Order, on a patch x of gray values in [0, 1]:
/// 1. geometry, exact (a permutation of pixels): a transpose with probability ½ (with the four rotations: the 8
///    symmetries of the square, i.e. flips and 90° rotations), then k·90° counter-clockwise, k uniform in 0…3;
/// 2. Gaussian blur with σ uniform in [0, `blur`] (skipped below 0.3), scipy.ndimage.gaussian_filter's arithmetic
///    (mode reflect, kernel radius round(3σ));
/// 3. gamma: x^γ, ln γ uniform in ±`gamma`;
/// 4. contrast and brightness: (x − m)·c + m + b with m the patch mean after gamma, c = 1 + uniform(±`contrast`),
///    b uniform in ±`brightness`; clipped to [0, 1].
public struct Augmentation: Sendable, Equatable, CustomStringConvertible {
    public var geometry = false
    public var blur: Float = 0, gamma: Float = 0, contrast: Float = 0, brightness: Float = 0

    public init() {}

    /// `standard`: all of them, at strengths that cover the benchmark's shift (PhantomShift.benchmark) with room.
    public static let standard: Augmentation = {
        var a = Augmentation()
        a.geometry = true; a.blur = 1.2; a.gamma = 0.35; a.contrast = 0.3; a.brightness = 0.12
        return a
    }()

    public var isIdentity: Bool { self == Augmentation() }

    /// Parses `none`, `standard`, or a list like `geometry,blur=1.2,gamma=0.35,contrast=0.3,brightness=0.12`.
    public static func parse(_ text: String) throws -> Augmentation {
        switch text {
        case "none": return Augmentation()
        case "standard": return .standard
        default: break
        }
        var a = Augmentation()
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PipelineError.input("--augment is empty; give none, standard, or a list such as geometry,gamma=0.3")
        }
        // Each key's largest sensible strength: beyond it a patch is mostly destroyed (σ against the 134-px window,
        // ln γ, the contrast factor's spread, the brightness offset on [0, 1] intensities).
        let limits: [String: (Float, String)] = ["blur": (16, "≤ 16 pixels"), "gamma": (2, "≤ 2 (ln γ: γ within e^±2)"),
                                                 "contrast": (1, "< 1"), "brightness": (1, "≤ 1 (intensities are 0…1)")]
        var seen = Set<String>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let key = kv.first, !key.isEmpty else {
                throw PipelineError.input(part.isEmpty ? "--augment: an empty item in '\(text)'" : "--augment: '\(part)' has no key (KEY=NUMBER); keys are geometry, blur, gamma, contrast, brightness")
            }
            guard seen.insert(key).inserted else { throw PipelineError.input("--augment: \(key) is given twice in '\(text)'") }
            if kv == ["geometry"] { a.geometry = true; continue }
            if key == "geometry" { throw PipelineError.input("--augment: geometry takes no value (it is on or absent); got '\(part)'") }
            if ["standard", "none"].contains(key) { throw PipelineError.input("--augment: \(key) stands alone, not in a list; got '\(text)'") }
            guard let (limit, says) = limits[key] else {
                throw PipelineError.input("--augment: unknown key '\(key)'; keys are geometry, blur, gamma, contrast, brightness")
            }
            guard kv.count == 2, let v = Float(kv[1]), !v.isNaN else {
                throw PipelineError.input("--augment: '\(part)' is not \(key)=NUMBER; e.g. --augment standard or geometry,gamma=0.3")
            }
            guard v >= 0, key == "contrast" ? v < limit : v <= limit else { throw PipelineError.input("--augment: \(key) must be ≥ 0 and \(says); got \(kv[1])") }
            switch key {
            case "blur": a.blur = v
            case "gamma": a.gamma = v
            case "contrast": a.contrast = v
            default: a.brightness = v
            }
        }
        return a
    }

    public var description: String {
        if isIdentity { return "none" }
        var parts: [String] = geometry ? ["geometry"] : []
        for (k, v) in [("blur", blur), ("gamma", gamma), ("contrast", contrast), ("brightness", brightness)] where v > 0 { parts.append("\(k)=\(v)") }
        return parts.joined(separator: ",")
    }

    /// One patch's transform.
    public struct Draw: Sendable, Equatable {
        public var transpose = false, rotations = 0
        public var sigma: Float = 0, gamma: Float = 1, contrast: Float = 1, brightness: Float = 0
        public init() {}
    }

    public func draw(seed: UInt64, epoch: Int, sample: Int) -> Draw {
        var r = SeededRandom(seed: seed, stream: 200 + UInt64(epoch), index: UInt64(sample))
        func uniform(_ half: Float) -> Float { (2 * r.nextFloat() - 1) * half }
        var d = Draw()
        if geometry { d.transpose = r.next(below: 2) == 1; d.rotations = r.next(below: 4) }
        if blur > 0 { let s = r.nextFloat() * blur; d.sigma = s < 0.3 ? 0 : s }
        if gamma > 0 { d.gamma = expf(uniform(gamma)) }
        if contrast > 0 { d.contrast = 1 + uniform(contrast) }
        if brightness > 0 { d.brightness = uniform(brightness) }
        return d
    }

    /// Writes the transformed patch (side² floats in [0, 1]) from u1 gray values; `scratch` holds side² floats.
    public static func apply(_ d: Draw, source: UnsafePointer<UInt8>, side n: Int, to out: UnsafeMutablePointer<Float>,
                             scratch: UnsafeMutablePointer<Float>) {
        // Geometry: out[i][j] = src[map(i, j)]. Transpose, then k counter-clockwise quarter turns (numpy's rot90).
        for i in 0..<n {
            for j in 0..<n {
                var a = i, b = j
                // rot90(m, k)[i][j]: k=1 → m[j][n−1−i], k=2 → m[n−1−i][n−1−j], k=3 → m[n−1−j][i].
                switch d.rotations {
                case 1: (a, b) = (j, n - 1 - i)
                case 2: (a, b) = (n - 1 - i, n - 1 - j)
                case 3: (a, b) = (n - 1 - j, i)
                default: break
                }
                if d.transpose { (a, b) = (b, a) }
                out[i * n + j] = Float(source[a * n + b]) * (1 / 255)
            }
        }
        if d.sigma > 0 { gaussianBlur(out, side: n, sigma: d.sigma, scratch: scratch) }
        if d.gamma != 1 { for k in 0..<(n * n) { out[k] = powf(out[k], d.gamma) } }
        if d.contrast != 1 || d.brightness != 0 {
            var sum: Float = 0
            for k in 0..<(n * n) { sum += out[k] }
            let m = sum / Float(n * n)
            for k in 0..<(n * n) { out[k] = min(1, max(0, (out[k] - m) * d.contrast + m + d.brightness)) }
        }
    }

    /// Separable Gaussian, rows then columns, as scipy.ndimage.gaussian_filter(mode="reflect", truncate=3).
    static func gaussianBlur(_ x: UnsafeMutablePointer<Float>, side n: Int, sigma: Float, scratch t: UnsafeMutablePointer<Float>) {
        let radius = Int(3 * sigma + 0.5)
        var w = (-radius...radius).map { expf(-0.5 * Float($0 * $0) / (sigma * sigma)) }
        let total = w.reduce(0, +)
        w = w.map { $0 / total }
        // Reflect about the edge (d c b a | a b c d | d c b a).
        @inline(__always) func at(_ i: Int) -> Int {
            var i = i
            while i < 0 || i >= n { i = i < 0 ? -i - 1 : 2 * n - i - 1 }
            return i
        }
        for r in 0..<n {
            let row = x + r * n
            for c in 0..<n {
                var s: Float = 0
                for k in -radius...radius { s += w[k + radius] * row[at(c + k)] }
                t[r * n + c] = s
            }
        }
        for r in 0..<n {
            for c in 0..<n {
                var s: Float = 0
                for k in -radius...radius { s += w[k + radius] * t[at(r + k) * n + c] }
                x[r * n + c] = s
            }
        }
    }

    /// The epoch's order with per-batch class balance: each class's patches shuffled, then dealt round by round in a
    /// shuffled class order, so every run of `classes` consecutive patches (and so every batch, up to one patch per
    /// class) holds each class equally. Without it a shuffled batch of 32 over 6 classes often misses a class.
    public static func balancedOrder(labels: [Int], classes: Int, seed: UInt64, epoch: Int) -> [Int] {
        var r = SeededRandom(seed: seed, stream: 300, index: UInt64(epoch))
        var byClass = [[Int]](repeating: [], count: classes)
        for (i, c) in labels.enumerated() { byClass[c].append(i) }
        for c in 0..<classes {
            for i in Swift.stride(from: byClass[c].count - 1, to: 0, by: -1) { byClass[c].swapAt(i, r.next(below: i + 1)) }
        }
        var order: [Int] = [], next = [Int](repeating: 0, count: classes)
        order.reserveCapacity(labels.count)
        while order.count < labels.count {
            var round = Array(0..<classes)
            for i in Swift.stride(from: classes - 1, to: 0, by: -1) { round.swapAt(i, r.next(below: i + 1)) }
            for c in round where next[c] < byClass[c].count { order.append(byClass[c][next[c]]); next[c] += 1 }
        }
        return order
    }
}
