import Foundation
import VolumeStore

/// A domain shift of the phantom's intensities, standing in for another sample or scan of the same anatomy (real data
/// shifts between slices and samples in exposure, contrast, detector response and noise). Applied to every voxel's
/// final gray value g (after blur and noise, before rounding to u1), in this order:
///
///     g' = 255 · contrast · (g / 255)^gamma + offset + noise · N(0, 1)
///
/// then clipped to 0…255. The extra noise is hashed from (seed, voxel), like the phantom's own, so a shifted phantom
/// is as reproducible and chunking-independent as an unshifted one.
public struct PhantomShift: Sendable, Equatable, CustomStringConvertible {
    public var gamma = 1.0, contrast = 1.0, offset = 0.0, noise = 0.0

    public init(gamma: Double = 1, contrast: Double = 1, offset: Double = 0, noise: Double = 0) {
        self.gamma = gamma; self.contrast = contrast; self.offset = offset; self.noise = noise
    }

    /// The shift the README's generalisation benchmark uses: darker mid-tones (gamma 1.25), 15 % less contrast,
    /// a +20 gray offset and twice the detector noise (an extra σ of 4.5 gray values).
    public static let benchmark = PhantomShift(gamma: 1.25, contrast: 0.85, offset: 20, noise: 4.5)

    /// Parses `gamma=1.25,contrast=0.85,offset=20,noise=4.5` (any subset; unnamed keys stay neutral) or `benchmark`.
    public static func parse(_ text: String) throws -> PhantomShift {
        if text == "benchmark" { return .benchmark }
        var s = PhantomShift()
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let v = Double(kv[1]), v.isFinite else {
                throw PhantomOptionError("--shift: '\(part)' is not key=number; write e.g. gamma=1.25,contrast=0.85,offset=20,noise=4.5")
            }
            switch kv[0] {
            case "gamma": guard v > 0 else { throw PhantomOptionError("--shift: gamma must be > 0 (got \(v))") }; s.gamma = v
            case "contrast": guard v > 0 else { throw PhantomOptionError("--shift: contrast must be > 0 (got \(v))") }; s.contrast = v
            case "offset": s.offset = v
            case "noise": guard v >= 0 else { throw PhantomOptionError("--shift: noise must be ≥ 0 (got \(v))") }; s.noise = v
            default: throw PhantomOptionError("--shift: unknown key '\(kv[0])'; keys are gamma, contrast, offset, noise")
            }
        }
        return s
    }

    public var description: String { "gamma=\(gamma),contrast=\(contrast),offset=\(offset),noise=\(noise)" }

    @inline(__always)
    func apply(_ g: Double, seed: UInt64, z: Int, y: Int, x: Int) -> Double {
        var v = 255 * contrast * Foundation.pow(max(0, g) / 255, gamma) + offset
        if noise > 0 {
            var h = HashStream(hash(seed, x, y, z, 61))
            v += noise * h.normal()
        }
        return v
    }
}

/// A region of tissue whose texture no class of the phantom has, for testing anomaly maps: within a disc of `radius`
/// pixels around (`y`, `x`) in every slice, the tissue's composited gray value (before the phantom's blur and noise)
/// is replaced by an egg-crate grating, 120 ± 55 gray with a period of 9 pixels along both axes. Every area of the
/// phantom is built from randomly placed objects (cells, axons, fascicles, vessels); none is periodic, and none has
/// this grating's contrast at this scale. The annotations (`areas`, `layers`) keep the anatomy under the disc; the
/// writer adds an `anomaly` array (1 inside the disc on tissue, 0 elsewhere).
public struct PhantomAnomaly: Sendable, Equatable, CustomStringConvertible {
    public var y: Int, x: Int, radius: Int
    public static let period = 9.0

    public init(y: Int, x: Int, radius: Int) { self.y = y; self.x = x; self.radius = radius }

    /// Parses `Y,X,R` (pixels).
    public static func parse(_ text: String, shape: [Int]) throws -> PhantomAnomaly {
        let v = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 3, let y = v[0], let x = v[1], let r = v[2] else {
            throw PhantomOptionError("--anomaly: '\(text)' is not Y,X,RADIUS in pixels (e.g. 256,900,80)")
        }
        guard r > 0, (0..<shape[1]).contains(y), (0..<shape[2]).contains(x) else {
            throw PhantomOptionError("--anomaly: centre (\(y), \(x)) must lie in the slice (0..<\(shape[1]), 0..<\(shape[2])) and the radius \(r) be positive")
        }
        return PhantomAnomaly(y: y, x: x, radius: r)
    }

    public var description: String { "\(y),\(x),\(radius)" }

    @inline(__always) func contains(y py: Int, x px: Int) -> Bool {
        let dy = py - y, dx = px - x
        return dy * dy + dx * dx <= radius * radius
    }

    @inline(__always) func gray(y py: Int, x px: Int) -> Float {
        let w = 2 * Double.pi / Self.period
        return Float(120 + 55 * sin(w * Double(px)) * sin(w * Double(py)))
    }

    /// The mask of a box (u1, 1 = anomalous tissue), given the box's areas.
    public func mask(_ box: Box, areas: [UInt8]) -> [UInt8] {
        let ny = box.size[1], nx = box.size[2]
        var out = [UInt8](repeating: 0, count: areas.count)
        for i in out.indices where areas[i] != 0 {
            let y = box.start[1] + (i / nx) % ny, x = box.start[2] + i % nx
            if contains(y: y, x: x) { out[i] = 1 }
        }
        return out
    }
}

public struct PhantomOptionError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

extension PhantomVolume {
    /// Whether the anomaly's disc covers tissue in some slice, judged from the layout on a grid of at most 64×64
    /// points in the disc (the anomaly is only painted on tissue: a disc in the background would leave an empty
    /// mask, and an anomaly test scored on it means nothing).
    public func coversTissue(_ a: PhantomAnomaly) -> Bool {
        let step = max(1, a.radius / 32)
        for z in 0..<shape[0] {
            for y in stride(from: max(0, a.y - a.radius), through: min(shape[1] - 1, a.y + a.radius), by: step) {
                for x in stride(from: max(0, a.x - a.radius), through: min(shape[2] - 1, a.x + a.radius), by: step) where a.contains(y: y, x: x) {
                    let (zd, yd, xd) = (Double(z), Double(y), Double(x))
                    if layout.site(z: zd, y: yd, x: xd, warp: layout.warp(z: zd, y: yd, x: xd)).area != .background { return true }
                }
            }
        }
        return false
    }
}
