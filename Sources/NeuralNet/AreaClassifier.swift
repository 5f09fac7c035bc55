/// The paper's area classifier (`Net`): four conv+ReLU+maxpool stages and three fully connected layers.
/// Parameters carry PyTorch's state_dict names and shapes, so the authors' published weights load unchanged.
public struct AreaClassifier: Sendable {
    /// Class order as trained (alphabetical).
    public static let classes = ["CTX", "HYP", "STR", "VP", "WM", "ZI"]
    public static let latentSize = 64
    /// Side of the paper's input patch (zero-padded net) and of the dense net's valid window.
    public static let patchSize = 128, windowSize = 134

    /// state_dict name → shape.
    public static let parameterShapes: [(String, [Int])] = [
        ("conv1.weight", [16, 3, 7, 7]), ("conv1.bias", [16]),
        ("conv2.weight", [32, 16, 5, 5]), ("conv2.bias", [32]),
        ("conv3.weight", [64, 32, 3, 3]), ("conv3.bias", [64]),
        ("conv4.weight", [128, 64, 3, 3]), ("conv4.bias", [128]),
        ("fc1.weight", [1024, 4608]), ("fc1.bias", [1024]),
        ("fc2.weight", [64, 1024]), ("fc2.bias", [64]),
        ("fc3.weight", [6, 64]), ("fc3.bias", [6]),
    ]

    public let parameters: [String: Tensor]
    /// conv1 with its three identical input channels folded into one (weights summed over input channels).
    let conv1: ConvLayer
    let conv2: ConvLayer, conv3: ConvLayer, conv4: ConvLayer
    /// fc1 as a 6×6 convolution over conv4's 128 channels (its 4608 inputs are in C, H, W order), fc2 and fc3 as 1×1.
    let fc1: ConvLayer, fc2: ConvLayer, fc3: ConvLayer

    public init(parameters p: [String: Tensor], source: String = "(memory)") throws {
        for (name, shape) in Self.parameterShapes {
            guard let t = p[name] else { throw NeuralNetError.missing(name: name, path: source) }
            guard t.shape == shape else { throw NeuralNetError.shape(name: name, expected: shape, got: t.shape) }
        }
        try FiniteWeights.check(Self.parameterShapes.map { ($0.0, p[$0.0]!) }, path: source)
        parameters = p
        let w1 = p["conv1.weight"]!.data
        var folded = [Float](repeating: 0, count: 16 * 49)
        for o in 0..<16 { for c in 0..<3 { for i in 0..<49 { folded[o * 49 + i] += w1[(o * 3 + c) * 49 + i] } } }
        conv1 = ConvLayer(weight: folded, bias: p["conv1.bias"]!.data, cin: 1, cout: 16, k: 7)
        func layer(_ n: String, _ cin: Int, _ cout: Int, _ k: Int) -> ConvLayer {
            ConvLayer(weight: p[n + ".weight"]!.data, bias: p[n + ".bias"]!.data, cin: cin, cout: cout, k: k)
        }
        conv2 = layer("conv2", 16, 32, 5); conv3 = layer("conv3", 32, 64, 3); conv4 = layer("conv4", 64, 128, 3)
        fc1 = layer("fc1", 128, 1024, 6); fc2 = layer("fc2", 1024, 64, 1); fc3 = layer("fc3", 64, 6, 1)
    }

    /// Loads safetensors weights, checking every name and shape.
    public init(contentsOf path: String) throws {
        try self.init(parameters: Safetensors.load(path: path), source: path)
    }

    /// PyTorch-default initialisation (uniform ±1/√fan_in for weights and biases), from a seed.
    public static func randomParameters(seed: UInt64) -> [String: Tensor] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        var out: [String: Tensor] = [:]
        for (name, shape) in parameterShapes {
            let layer = String(name.split(separator: ".")[0])
            let wshape = parameterShapes.first { $0.0 == layer + ".weight" }!.1
            let bound = 1 / Float(wshape.dropFirst().reduce(1, *)).squareRoot()
            out[name] = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in (2 * next() - 1) * bound })
        }
        return out
    }
}

/// What the network says about a set of pixels: logits, softmax probabilities and the 64-d latents (fc2 output).
public struct ClassifierOutput: Sendable {
    /// [n, 64]
    public var latents: [Float]
    /// [n, 6]
    public var logits: [Float]
    public var count: Int { logits.count / AreaClassifier.classes.count }

    /// Softmax probabilities, [n, 6].
    public var probabilities: [Float] {
        var p = logits
        let k = AreaClassifier.classes.count
        p.withUnsafeMutableBufferPointer { b in
            for i in 0..<(b.count / k) { softmax(UnsafeMutableBufferPointer(rebasing: b[(i * k)..<((i + 1) * k)])) }
        }
        return p
    }
}
