import Foundation

/// Label ids of the phantom's `areas` array (alphabetical class order, as the paper's network was trained).
public enum PhantomArea: UInt8, CaseIterable, Sendable {
    case background = 0, ctx = 1, hyp = 2, str = 3, vp = 4, wm = 5, zi = 6
    public static let names = ["background", "CTX", "HYP", "STR", "VP", "WM", "ZI"]
}

/// Label ids of the phantom's `layers` array (0 outside cortex).
public enum PhantomLayer: UInt8, CaseIterable, Sendable {
    case none = 0, l1 = 1, l23 = 2, l4 = 3, l5 = 4, l6 = 5
    public static let names = ["outside cortex", "L1", "L2/3", "L4", "L5", "L6"]
}

/// The geometry of the synthetic coronal thalamocortical section, laid out like the paper's slice (cortex on the
/// right, hypothalamus on the left). All shapes scale with the volume's width; boundaries are displaced by smooth
/// 3-D noise whose z correlation length (~120 voxels) makes neighbouring slices alike and slices 100 apart differ.
struct PhantomLayout: Sendable {
    let depth: Int, height: Int, width: Int
    let seed: UInt64
    let W: Double, H: Double
    // Cortex: an arc of a circle centred left of the volume; pia at radius R, thickness T (units of width).
    let R = 1.0, T = 0.20, ccThickness = 0.032
    let cx: Double, cy: Double
    /// Noise length scale in voxels for area boundaries (shrinks with small phantoms, but not below 100).
    let boundaryScale: Double
    /// Cortical layer boundaries in relative depth (0 pia, 1 white matter).
    static let layerTops = [0.0, 0.09, 0.33, 0.47, 0.70]

    init(shape: [Int], seed: UInt64) {
        depth = shape[0]; height = shape[1]; width = shape[2]; self.seed = seed
        W = Double(width); H = Double(height)
        cx = 0.97 - R; cy = 0.5 * H / W
        boundaryScale = max(100, 350 * W / 5805)
    }

    /// Displacements of area boundaries (w1), layer boundaries (w2) and tissue edges (w3), each in [-1, 1].
    @inline(__always)
    func warp(z: Double, y: Double, x: Double) -> (Double, Double, Double) {
        let s = boundaryScale
        let w1 = 0.75 * valueNoise(seed, 11, x / s, y / s, z / 120) + 0.25 * valueNoise(seed, 12, x / (s * 0.35), y / (s * 0.35), z / 60)
        let w2 = valueNoise(seed, 13, x / (s * 0.6), y / (s * 0.6), z / 90)
        let w3 = valueNoise(seed, 14, x / (s * 1.5), y / (s * 1.5), z / 200)
        return (w1, w2, w3)
    }

    struct Site {
        var area: PhantomArea
        var layer: PhantomLayer
        /// Relative cortical depth (0 at pia, 1 at white matter); only meaningful in cortex.
        var corticalDepth: Double
        /// Unit vector (y, x) pointing from pia towards white matter, the cortex's radial direction.
        var radialY: Double, radialX: Double
        /// Arc length along the cortex in voxels (the tangential coordinate of barrels).
        var arc: Double
    }

    @inline(__always)
    func site(z: Double, y: Double, x: Double, warp w: (Double, Double, Double)) -> Site {
        let (w1, w2, w3) = w
        let u = x / W, v = y / H
        let px = u, py = y / W
        let dy = py - cy, dx = px - cx
        let d = (dx * dx + dy * dy).squareRoot()
        let radialY = -dy / d, radialX = -dx / d
        let arc = atan2(dy, dx) * R * W
        var s = Site(area: .background, layer: .none, corticalDepth: -1, radialY: radialY, radialX: radialX, arc: arc)

        // Tissue: tapered towards the left end (hypothalamus), ragged edges, pia on the right.
        let taper = 0.38 * pow(max(0, (0.13 - u) / 0.13), 1.6)
        let top = 0.06 + 0.02 * w3 + taper, bottom = 0.95 + 0.02 * w3 - taper
        if v < top || v > bottom || u < 0.015 + 0.008 * w3 { return s }
        let dd = d + 0.010 * w1
        if dd > R { return s }

        let t = (R - dd) / T
        if t < 1 {
            s.area = .ctx
            s.corticalDepth = t
            let tl = t + 0.025 * w2
            var layer = PhantomLayer.l1
            for (i, top) in Self.layerTops.enumerated() where tl >= top { layer = PhantomLayer(rawValue: UInt8(i + 1))! }
            s.layer = layer
            return s
        }
        if t < 1 + ccThickness / T { s.area = .wm; return s }

        let ue = u + 0.016 * w1
        if ue >= 0.47 + 0.05 * (v - 0.5) { s.area = .str }
        else if ue >= 0.425 + 0.06 * (v - 0.5) { s.area = .wm }
        else if ue >= 0.29 - 0.06 * (v - 0.5) + 0.008 * w2 { s.area = .vp }
        else if ue >= 0.215 - 0.04 * (v - 0.5) + 0.01 * w2 { s.area = .zi }
        else { s.area = .hyp }
        return s
    }

    /// Barrel-field modulation of L4 cell density at a point: walls dense, hollows moderate, septa sparse.
    /// Barrels are columns on a jittered grid over (arc, z) with a ~180-voxel (~210 µm) period.
    func barrelFactor(arc: Double, z: Double) -> Double {
        let period = 180.0
        let gi = Int((arc / period).rounded(.down)), gk = Int((z / period).rounded(.down))
        var best = Double.infinity, bestR = 1.0
        for di in -1...1 { for dk in -1...1 {
            var h = HashStream(hash(seed, gi + di, gk + dk, 0, 21))
            let ca = (Double(gi + di) + 0.5 + 0.4 * (h.next() - 0.5)) * period
            let cz = (Double(gk + dk) + 0.5 + 0.4 * (h.next() - 0.5)) * period
            let rb = period * h.range(0.34, 0.42)
            let r = ((arc - ca) * (arc - ca) + (z - cz) * (z - cz)).squareRoot() / rb
            if r < best { best = r; bestR = rb }
        } }
        _ = bestR
        if best < 0.55 { return 1.1 }
        if best < 1.0 { return 2.3 }
        return 0.35
    }
}
