/// Counter-based randomness: every value is a pure function of (seed, integer coordinates, salt), so any chunk of
/// the phantom can be generated alone, in any order, on any thread, with identical bytes.
@inline(__always)
func mix(_ x: UInt64) -> UInt64 {
    // splitmix64 finaliser
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

@inline(__always)
func hash(_ seed: UInt64, _ a: Int, _ b: Int, _ c: Int, _ salt: UInt64) -> UInt64 {
    var h = mix(seed ^ (salt &* 0xD6E8_FEB8_6659_FD93))
    h = mix(h ^ UInt64(bitPattern: Int64(a)))
    h = mix(h ^ UInt64(bitPattern: Int64(b)) &* 0x9E37_79B9)
    return mix(h ^ UInt64(bitPattern: Int64(c)) &* 0x85EB_CA6B)
}

/// A stream of uniform numbers derived from one hash, for drawing an object's several parameters.
struct HashStream {
    var state: UInt64
    init(_ h: UInt64) { state = h }
    @inline(__always) mutating func next() -> Double {
        state = mix(state)
        return Double(state >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
    /// Approximately normal (sum of four uniforms), mean 0, sd 1.
    @inline(__always) mutating func normal() -> Double {
        (next() + next() + next() + next() - 2.0) * 1.7320508
    }
    @inline(__always) mutating func range(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * next() }
}

/// Smooth 3-D value noise in [-1, 1]: hashed values on the integer lattice, smoothstep-interpolated.
@inline(__always)
func valueNoise(_ seed: UInt64, _ salt: UInt64, _ x: Double, _ y: Double, _ z: Double) -> Double {
    let xf = x.rounded(.down), yf = y.rounded(.down), zf = z.rounded(.down)
    let xi = Int(xf), yi = Int(yf), zi = Int(zf)
    func s(_ t: Double) -> Double { t * t * (3 - 2 * t) }
    let tx = s(x - xf), ty = s(y - yf), tz = s(z - zf)
    @inline(__always) func v(_ i: Int, _ j: Int, _ k: Int) -> Double {
        Double(hash(seed, xi + i, yi + j, zi + k, salt) >> 11) * (2.0 / 9_007_199_254_740_992.0) - 1.0
    }
    let c00 = v(0, 0, 0) + (v(1, 0, 0) - v(0, 0, 0)) * tx
    let c10 = v(0, 1, 0) + (v(1, 1, 0) - v(0, 1, 0)) * tx
    let c01 = v(0, 0, 1) + (v(1, 0, 1) - v(0, 0, 1)) * tx
    let c11 = v(0, 1, 1) + (v(1, 1, 1) - v(0, 1, 1)) * tx
    let c0 = c00 + (c10 - c00) * ty, c1 = c01 + (c11 - c01) * ty
    return c0 + (c1 - c0) * tz
}
