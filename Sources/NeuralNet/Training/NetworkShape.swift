/// The shape of a trainable classifier of the paper's family: conv stages (conv → ReLU → 2×2 max pool, stride 2),
/// flatten (C, H, W order), then fully connected layers, each preceded by dropout. The input is one gray image copied
/// into `inChannels` identical channels, so conv1 runs on the channel-folded weights (exactly the same function).
public struct NetworkShape: Sendable, Equatable {
    public struct Conv: Sendable, Equatable { public var out: Int, k: Int, pad: Int }
    public struct Linear: Sendable, Equatable { public var out: Int, relu: Bool }

    public var input: Int
    public var inChannels: Int
    public var convs: [Conv]
    public var linears: [Linear]
    public var dropout: Float

    public init(input: Int, inChannels: Int, convs: [Conv], linears: [Linear], dropout: Float) {
        self.input = input; self.inChannels = inChannels; self.convs = convs; self.linears = linears; self.dropout = dropout
    }

    /// The two input forms of the paper's network. `valid134` (conv1 and conv2 without padding on a 134×134
    /// window) is the function the dense engine computes exactly; `padded128` is the paper's own (padding 1 on a
    /// 128×128 patch), which dense inference only approximates near the window's border.
    public enum Form: String, Sendable, CaseIterable {
        case valid134, padded128
        public var window: Int { self == .valid134 ? AreaClassifier.windowSize : AreaClassifier.patchSize }
        var firstPadding: Int { self == .valid134 ? 0 : 1 }
    }

    /// The paper's `Net` (AreaClassifier's parameters, names and order).
    public static func paper(_ form: Form) -> NetworkShape {
        let p = form.firstPadding
        return NetworkShape(input: form.window, inChannels: 3,
                            convs: [Conv(out: 16, k: 7, pad: p), Conv(out: 32, k: 5, pad: p), Conv(out: 64, k: 3, pad: 0),
                                    Conv(out: 128, k: 3, pad: 0)],
                            linears: [Linear(out: 1024, relu: true), Linear(out: 64, relu: false),
                                      Linear(out: AreaClassifier.classes.count, relu: false)],
                            dropout: 0.3)
    }

    public var classes: Int { linears.last!.out }

    /// Per conv stage: (input side, input channels, conv output side, pooled side).
    var convGeometry: [(side: Int, cin: Int, convSide: Int, pooled: Int)] {
        var side = input, cin = 1, out: [(Int, Int, Int, Int)] = []
        for c in convs {
            let o = side + 2 * c.pad - (c.k - 1)
            let p = MaxPool.outputSize(o, o, stride: 2, dilation: 1).0
            out.append((side, cin, o, p))
            side = p; cin = c.out
        }
        return out
    }

    /// Inputs of each linear layer (the first is the flattened last conv stage).
    var linearInputs: [Int] {
        let g = convGeometry.last!
        var n = [convs.last!.out * g.pooled * g.pooled]
        for l in linears.dropLast() { n.append(l.out) }
        return n
    }

    /// state_dict names and shapes, in PyTorch's order: conv1…convN, fc1…fcM, weight then bias.
    public var parameterShapes: [(String, [Int])] {
        var out: [(String, [Int])] = []
        var cin = inChannels
        for (i, c) in convs.enumerated() {
            out += [("conv\(i + 1).weight", [c.out, cin, c.k, c.k]), ("conv\(i + 1).bias", [c.out])]
            cin = c.out
        }
        for (i, (l, n)) in zip(linears, linearInputs).enumerated() {
            out += [("fc\(i + 1).weight", [l.out, n]), ("fc\(i + 1).bias", [l.out])]
        }
        return out
    }

    /// Floats of dropout mask per sample (one per input of every linear layer).
    public var dropoutWidth: Int { linearInputs.reduce(0, +) }

    /// PyTorch's default initialisation (uniform ±1/√fan_in for weights and biases, kaiming_uniform(a=√5)'s bound),
    /// drawn from a seed, in `parameterShapes` order.
    public func initialParameters(seed: UInt64) -> [Tensor] {
        var rng = SeededRandom(seed: seed)
        return parameterShapes.map { name, shape in
            let layer = name.split(separator: ".")[0]
            let fanIn = parameterShapes.first { $0.0 == layer + ".weight" }!.1.dropFirst().reduce(1, *)
            let bound = 1 / Float(fanIn).squareRoot()
            return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in (2 * rng.nextFloat() - 1) * bound })
        }
    }
}

/// SplitMix64: small, fast, and the same stream on every platform (training is reproducible from its seed).
public struct SeededRandom: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    /// A generator for the `index`-th item of a stream, independent of how the stream is split across threads.
    public init(seed: UInt64, stream: UInt64, index: UInt64) {
        var s = SeededRandom(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = s.next() ^ (index &* 0x9E37_79B9_7F4A_7C15)
    }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 24 bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Uniform in 0..<n (n > 0), without modulo bias.
    public mutating func next(below n: Int) -> Int {
        let bound = UInt64(n)
        let limit = UInt64.max - UInt64.max % bound
        while true { let v = next(); if v < limit { return Int(v % bound) } }
    }
}
