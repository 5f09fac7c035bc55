import Foundation
import VolumeStore

/// Raw intensities and ground truth of one box of the phantom.
public struct PhantomBlock: Sendable {
    public let box: Box
    public var raw: [UInt8]
    public var areas: [UInt8]
    public var layers: [UInt8]
}

/// The procedural thalamocortical volume. `render` computes any box from the seed alone, in memory proportional to
/// the box: objects (cell bodies, myelinated axons, fascicles, vessels) sit on hashed jittered grids and are splatted
/// with order-independent max-combination, so every voxel is identical whatever the chunking or thread count.
public struct PhantomVolume: Sendable {
    public let shape: [Int]
    public let seed: UInt64
    let layout: PhantomLayout
    /// Optional intensity shift and anomaly region (PhantomVariant.swift); nil leaves the phantom as it was.
    public var shift: PhantomShift?
    public var anomaly: PhantomAnomaly?
    /// In-plane spacing of the grid on which label warps and base intensities are sampled and interpolated.
    static let lattice = 8

    public init(shape: [Int], seed: UInt64) {
        precondition(shape.count == 3 && shape.allSatisfy { $0 > 0 }, "phantom shape must be three positive sizes")
        self.shape = shape; self.seed = seed
        layout = PhantomLayout(shape: shape, seed: seed)
    }

    /// Renders a (z, y, x) box. Voxels outside the volume are not allowed.
    public func render(_ box: Box) -> PhantomBlock {
        var c = Canvas(box: box)
        paintLabelsAndBase(&c)
        paintObjects(&c)
        return finish(c)
    }

    // MARK: - canvas

    /// Working buffers over the box grown by one voxel in y and x (the blur's reach).
    struct Canvas {
        let box: Box
        let nz: Int, ny: Int, nx: Int   // extended sizes
        let z0: Int, y0: Int, x0: Int   // extended origin
        var base: [Float], bright: [Float], alpha: [Float], target: [Float]
        var area: [UInt8], layer: [UInt8]
        init(box: Box) {
            self.box = box
            nz = box.size[0]; ny = box.size[1] + 2; nx = box.size[2] + 2
            z0 = box.start[0]; y0 = box.start[1] - 1; x0 = box.start[2] - 1
            let n = nz * ny * nx
            base = .init(repeating: 0, count: n); bright = .init(repeating: 0, count: n)
            alpha = .init(repeating: 0, count: n); target = .init(repeating: 0, count: n)
            area = .init(repeating: 0, count: n); layer = .init(repeating: 0, count: n)
        }
        @inline(__always) func index(_ z: Int, _ y: Int, _ x: Int) -> Int { ((z - z0) * ny + (y - y0)) * nx + (x - x0) }
    }

    // MARK: - labels and neuropil

    private func paintLabelsAndBase(_ c: inout Canvas) {
        let L = Self.lattice
        let ly0 = Int((Double(c.y0) / Double(L)).rounded(.down)), ly1 = Int((Double(c.y0 + c.ny - 1) / Double(L)).rounded(.down)) + 1
        let lx0 = Int((Double(c.x0) / Double(L)).rounded(.down)), lx1 = Int((Double(c.x0 + c.nx - 1) / Double(L)).rounded(.down)) + 1
        let lny = ly1 - ly0 + 1, lnx = lx1 - lx0 + 1
        var w1 = [Double](repeating: 0, count: lny * lnx), w2 = w1, w3 = w1, tone = w1
        for z in c.z0..<(c.z0 + c.nz) {
            let zd = Double(z)
            for j in 0..<lny { for i in 0..<lnx {
                let y = Double((ly0 + j) * L), x = Double((lx0 + i) * L)
                let w = layout.warp(z: zd, y: y, x: x)
                let k = j * lnx + i
                w1[k] = w.0; w2[k] = w.1; w3[k] = w.2
                let s = layout.site(z: zd, y: y, x: x, warp: w)
                let drift = 1 + 0.05 * valueNoise(seed, 41, x / 700, y / 700, zd / 300)
                tone[k] = AreaTexture.forArea(s.area).base * drift
            } }
            for y in c.y0..<(c.y0 + c.ny) {
                let fy = Double(y) / Double(L) - Double(ly0)
                let j = min(Int(fy.rounded(.down)), lny - 2), ty = fy - Double(j)
                for x in c.x0..<(c.x0 + c.nx) {
                    let fx = Double(x) / Double(L) - Double(lx0)
                    let i = min(Int(fx.rounded(.down)), lnx - 2), tx = fx - Double(i)
                    @inline(__always) func lerp(_ f: [Double]) -> Double {
                        let a = f[j * lnx + i], b = f[j * lnx + i + 1], cc = f[(j + 1) * lnx + i], d = f[(j + 1) * lnx + i + 1]
                        return (a + (b - a) * tx) + ((cc + (d - cc) * tx) - (a + (b - a) * tx)) * ty
                    }
                    let s = layout.site(z: zd, y: Double(y), x: Double(x), warp: (lerp(w1), lerp(w2), lerp(w3)))
                    let k = c.index(z, y, x)
                    c.area[k] = s.area.rawValue; c.layer[k] = s.layer.rawValue
                    c.base[k] = Float(lerp(tone))
                }
            }
        }
    }

    // MARK: - objects

    /// Calls `body` for every candidate site of a jittered grid whose objects may reach the canvas.
    private func forEachCandidate(_ c: Canvas, spacing g: Double, zSpacing gz: Double, reach: Double, zReach: Double,
                                  salt: UInt64, _ body: (inout HashStream, Double, Double, Double) -> Void) {
        let k0 = Int(((Double(c.z0) - zReach) / gz).rounded(.down)), k1 = Int(((Double(c.z0 + c.nz - 1) + zReach) / gz).rounded(.down))
        let j0 = Int(((Double(c.y0) - reach) / g).rounded(.down)), j1 = Int(((Double(c.y0 + c.ny - 1) + reach) / g).rounded(.down))
        let i0 = Int(((Double(c.x0) - reach) / g).rounded(.down)), i1 = Int(((Double(c.x0 + c.nx - 1) + reach) / g).rounded(.down))
        guard k0 <= k1, j0 <= j1, i0 <= i1 else { return }
        for k in k0...k1 { for j in j0...j1 { for i in i0...i1 {
            var h = HashStream(hash(seed, i, j, k, salt))
            let z = (Double(k) + h.next()) * gz, y = (Double(j) + h.next()) * g, x = (Double(i) + h.next()) * g
            body(&h, z, y, x)
        } } }
    }

    private func site(_ z: Double, _ y: Double, _ x: Double) -> PhantomLayout.Site {
        layout.site(z: z, y: y, x: x, warp: layout.warp(z: z, y: y, x: x))
    }

    /// The texture at a point, with cortical layers, barrels and the hypothalamus' patchiness applied.
    private func texture(_ s: PhantomLayout.Site, _ z: Double, _ y: Double, _ x: Double) -> AreaTexture {
        var t = AreaTexture.forArea(s.area)
        if s.area == .ctx {
            t.applyLayer(s.layer)
            if s.layer == .l4 { t.cellP *= layout.barrelFactor(arc: s.arc, z: z) }
        } else if s.area == .hyp {
            // Hypothalamus is heterogeneous: patches look like ZI (one fibre direction), others like VP.
            let p = valueNoise(seed, 31, x / 260, y / 260, z / 150)
            if p > 0.25 { t.axonP = 0.3; t.axonFrame = .fixed; t.axonAngle = -0.17; t.axonSpread = 0.15; t.axonTilt = 0.15 }
            else if p < -0.3 { t.cellP = 0.42; t.cellR = 3.5; t.axonP = 0.3; t.axonFrame = .fixed; t.axonAngle = 0.95; t.axonSpread = 0.4 }
        }
        return t
    }

    private func paintObjects(_ c: inout Canvas) {
        // Cell bodies: dark ellipsoids.
        forEachCandidate(c, spacing: 10, zSpacing: 10, reach: 8, zReach: 8, salt: 101) { h, z, y, x in
            guard let (_, t) = accepted(&h, z, y, x, maxP: 0.95, \.cellP) else { return }
            let r = max(1.5, t.cellR + t.cellRsd * h.normal())
            let e = h.range(1.0, 1.35), th = h.range(0, .pi)
            splatBlob(&c, z, y, x, r: r, elong: e, angle: th, alpha: Float(h.range(0.55, 0.85)), target: Float(h.range(25, 50)))
        }
        // Myelinated axons: thin bright tubes, direction by area.
        forEachCandidate(c, spacing: 10, zSpacing: 10, reach: 50, zReach: 50, salt: 102) { h, z, y, x in
            guard let (s, t) = accepted(&h, z, y, x, maxP: 0.9, \.axonP) else { return }
            var angle: Double
            switch t.axonFrame {
            case .fixed: angle = t.axonAngle
            case .radial: angle = atan2(s.radialY, s.radialX)
            case .tangential: angle = atan2(s.radialY, s.radialX) + .pi / 2
            case .random: angle = h.range(0, 2 * .pi)
            }
            angle += t.axonSpread * h.normal()
            let tilt = t.axonTilt * h.normal()
            let len = h.range(30, 95), r = h.range(0.7, 1.4)
            let dir = unit(tilt, sin(angle), cos(angle))
            splatTube(&c, center: (z, y, x), dir: dir, length: len, r: r, bright: Float(t.axonBright * h.range(0.7, 1.3)))
        }
        // Striatal fascicles: thick bright bundles, mostly in-plane and diagonal, some through-plane.
        forEachCandidate(c, spacing: 60, zSpacing: 60, reach: 240, zReach: 240, salt: 103) { h, z, y, x in
            guard h.next() < 0.75, site(z, y, x).area == .str else { return }
            let angle = -0.4 + 0.35 * h.normal(), tilt = 0.3 * h.normal()
            splatTube(&c, center: (z, y, x), dir: unit(tilt, sin(angle), cos(angle)), length: h.range(180, 460),
                      r: h.range(4, 9), bright: Float(h.range(45, 65)))
        }
        // Capillaries: short thin dark tubes everywhere in tissue.
        forEachCandidate(c, spacing: 36, zSpacing: 36, reach: 30, zReach: 30, salt: 104) { h, z, y, x in
            guard h.next() < 0.5, site(z, y, x).area != .background else { return }
            let angle = h.range(0, 2 * .pi), tilt = h.normal()
            splatTube(&c, center: (z, y, x), dir: unit(tilt, sin(angle), cos(angle)), length: h.range(15, 50),
                      r: h.range(1.0, 2.0), alpha: Float(h.range(0.6, 0.85)), target: 30)
        }
        // Large vessels: wide, nearly through-plane, almost black holes in a slice.
        forEachCandidate(c, spacing: 320, zSpacing: 320, reach: 60, zReach: 220, salt: 105) { h, z, y, x in
            guard h.next() < 0.35, site(z, y, x).area != .background else { return }
            let angle = h.range(0, 2 * .pi), spread = 0.35 * h.normal()
            splatTube(&c, center: (z, y, x), dir: unit(1, spread * sin(angle), spread * cos(angle)), length: 420,
                      r: h.range(6, 14), alpha: 1, target: 4)
        }
    }

    /// Whether a candidate becomes an object: a uniform draw against the texture's probability at its site.
    /// The draw is tested against `maxP` first so most rejections skip the (costly) site evaluation.
    private func accepted(_ h: inout HashStream, _ z: Double, _ y: Double, _ x: Double, maxP: Double,
                          _ p: KeyPath<AreaTexture, Double>) -> (PhantomLayout.Site, AreaTexture)? {
        let u = h.next()
        guard u < maxP else { return nil }
        let s = site(z, y, x)
        guard s.area != .background else { return nil }
        let t = texture(s, z, y, x)
        return u < t[keyPath: p] ? (s, t) : nil
    }

    private func unit(_ z: Double, _ y: Double, _ x: Double) -> (Double, Double, Double) {
        let n = (z * z + y * y + x * x).squareRoot()
        return (z / n, y / n, x / n)
    }

    private func splatBlob(_ c: inout Canvas, _ cz: Double, _ cy: Double, _ cx: Double, r: Double, elong: Double,
                           angle: Double, alpha: Float, target: Float) {
        let ext = r * elong + 1
        let za = max(c.z0, Int((cz - r - 1).rounded(.up))), zb = min(c.z0 + c.nz - 1, Int((cz + r + 1).rounded(.down)))
        let ya = max(c.y0, Int((cy - ext).rounded(.up))), yb = min(c.y0 + c.ny - 1, Int((cy + ext).rounded(.down)))
        let xa = max(c.x0, Int((cx - ext).rounded(.up))), xb = min(c.x0 + c.nx - 1, Int((cx + ext).rounded(.down)))
        guard za <= zb, ya <= yb, xa <= xb else { return }
        let ca = cos(angle), sa = sin(angle)
        for z in za...zb { for y in ya...yb { for x in xa...xb {
            let dz = Double(z) - cz, dy = Double(y) - cy, dx = Double(x) - cx
            let p = (dx * ca + dy * sa) / elong, q = -dx * sa + dy * ca
            let rho = (dz * dz + p * p + q * q).squareRoot()
            let a = alpha * Float(min(1, max(0, r + 0.5 - rho)))
            let k = c.index(z, y, x)
            if a > c.alpha[k] { c.alpha[k] = a; c.target[k] = target }
        } } }
    }

    /// Splats a capsule (a segment of `length` along `dir` through `center`, radius r): bright if `bright` > 0,
    /// otherwise dark with the given alpha and target gray.
    private func splatTube(_ c: inout Canvas, center: (Double, Double, Double), dir: (Double, Double, Double),
                           length: Double, r: Double, bright: Float = 0, alpha: Float = 0, target: Float = 0) {
        let half = length / 2
        let az = center.0 - dir.0 * half, ay = center.1 - dir.1 * half, ax = center.2 - dir.2 * half
        let bz = dir.0 * length, by = dir.1 * length, bx = dir.2 * length
        let R = r + 1
        for z in c.z0..<(c.z0 + c.nz) {
            let zd = Double(z)
            // Parameter range of the segment within R of this plane.
            var t0 = 0.0, t1 = 1.0
            if abs(bz) < 1e-9 { if abs(zd - az) > R { continue } }
            else {
                let ta = (zd - R - az) / bz, tb = (zd + R - az) / bz
                t0 = max(0, min(ta, tb)); t1 = min(1, max(ta, tb))
                if t0 > t1 { continue }
            }
            let ya = max(c.y0, Int((min(ay + by * t0, ay + by * t1) - R).rounded(.up)))
            let yb = min(c.y0 + c.ny - 1, Int((max(ay + by * t0, ay + by * t1) + R).rounded(.down)))
            guard ya <= yb else { continue }
            for y in ya...yb {
                let yd = Double(y)
                var s0 = t0, s1 = t1
                if abs(by) > 1e-9 {
                    let ta = (yd - R - ay) / by, tb = (yd + R - ay) / by
                    s0 = max(t0, min(ta, tb)); s1 = min(t1, max(ta, tb))
                    if s0 > s1 { continue }
                }
                let xa = max(c.x0, Int((min(ax + bx * s0, ax + bx * s1) - R).rounded(.up)))
                let xb = min(c.x0 + c.nx - 1, Int((max(ax + bx * s0, ax + bx * s1) + R).rounded(.down)))
                guard xa <= xb else { continue }
                for x in xa...xb {
                    let pz = zd - az, py = yd - ay, px = Double(x) - ax
                    let t = max(0, min(1, (pz * bz + py * by + px * bx) / (length * length)))
                    let ez = pz - bz * t, ey = py - by * t, ex = px - bx * t
                    let dist = (ez * ez + ey * ey + ex * ex).squareRoot()
                    let w = Float(min(1, max(0, r + 0.5 - dist)))
                    guard w > 0 else { continue }
                    let k = c.index(z, y, x)
                    if bright > 0 { c.bright[k] = max(c.bright[k], bright * w) }
                    else if alpha * w > c.alpha[k] { c.alpha[k] = alpha * w; c.target[k] = target }
                }
            }
        }
    }

    // MARK: - compositing, blur, noise

    private func finish(_ c: Canvas) -> PhantomBlock {
        let n = c.nz * c.ny * c.nx
        var value = [Float](repeating: 0, count: n)
        let bg = Float(AreaTexture.forArea(.background).base)
        for k in 0..<n {
            if c.area[k] == 0 { value[k] = bg; continue }
            let v = c.base[k] + c.bright[k]
            value[k] = v * (1 - c.alpha[k]) + c.alpha[k] * c.target[k]
        }
        if let anomaly {
            for k in 0..<n where c.area[k] != 0 {
                let y = c.y0 + (k / c.nx) % c.ny, x = c.x0 + k % c.nx
                if anomaly.contains(y: y, x: x) { value[k] = anomaly.gray(y: y, x: x) }
            }
        }
        let box = c.box
        let oz = box.size[0], oy = box.size[1], ox = box.size[2]
        var raw = [UInt8](repeating: 0, count: oz * oy * ox), areas = raw, layers = raw
        for z in 0..<oz {
            let gz = box.start[0] + z
            for y in 0..<oy {
                let gy = box.start[1] + y
                for x in 0..<ox {
                    let gx = box.start[2] + x
                    let k = c.index(gz, gy, gx)
                    // 3×3 binomial blur (partial-volume and point-spread), then fine texture and detector noise.
                    let r0 = value[k - c.nx - 1] + 2 * value[k - c.nx] + value[k - c.nx + 1]
                    let r1 = value[k - 1] + 2 * value[k] + value[k + 1]
                    let r2 = value[k + c.nx - 1] + 2 * value[k + c.nx] + value[k + c.nx + 1]
                    var v = Double(r0 + 2 * r1 + r2) / 16
                    if c.area[k] != 0 {
                        v += 6 * valueNoise(seed, 51, Double(gx) / 2.5, Double(gy) / 2.5, Double(gz) / 2.5)
                    }
                    var h = HashStream(hash(seed, gx, gy, gz, 52))
                    v += 4.5 * h.normal()
                    if let shift { v = shift.apply(v, seed: seed, z: gz, y: gy, x: gx) }
                    let o = (z * oy + y) * ox + x
                    raw[o] = UInt8(max(0, min(255, v.rounded())))
                    areas[o] = c.area[k]; layers[o] = c.layer[k]
                }
            }
        }
        return PhantomBlock(box: box, raw: raw, areas: areas, layers: layers)
    }
}
