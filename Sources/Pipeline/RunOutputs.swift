import VolumeStore

/// The arrays a prediction run writes. Channel-first like OME-Zarr (`probabilities` (6, z, y, x), `features`
/// (64, z, y, x)); every array spans the source's full (z, y, x) extent at the output stride, one chunk per block.
public enum OutputKind: String, CaseIterable, Sendable {
    /// u1: 0 = not predicted (outside the tissue mask), 1…6 = CTX, HYP, STR, VP, WM, ZI.
    case labels
    /// Softmax probabilities of the six classes.
    case probabilities
    /// The 64-d latents (fc2 output, before fc3): what the analysis factorizes.
    case features
    /// −Σ p ln p of the probabilities, in nats (0 … ln 6 ≈ 1.79): the prediction's uncertainty per pixel.
    case entropy
    /// Mahalanobis distance of the pixel's latents to its predicted class's training distribution (the model's
    /// sidecar `latent_statistics`): how unlike the training data the pixel looks. Not in the default outputs.
    case anomaly

    /// What `predict` writes unless `--outputs` says otherwise.
    public static let defaults: [OutputKind] = [.labels, .probabilities, .features, .entropy]

    public var channels: Int {
        switch self { case .labels, .entropy, .anomaly: return 1; case .probabilities: return 6; case .features: return 64 }
    }
    var hasChannelAxis: Bool { self == .probabilities || self == .features }

    public static func parse(_ list: String) throws -> [OutputKind] {
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let kinds = try names.map { n -> OutputKind in
            guard let k = OutputKind(rawValue: n) else {
                throw PipelineError.input("--outputs: unknown output '\(n)'; choose from \(allCases.map(\.rawValue).joined(separator: ","))")
            }
            return k
        }
        guard !kinds.isEmpty else { throw PipelineError.input("--outputs names no output") }
        return allCases.filter(kinds.contains)   // canonical order, no duplicates
    }
}

/// f32 (default) or f16 for the float outputs.
public enum OutputPrecision: String, Sendable, CaseIterable {
    case f32, f16
    var dtype: DataType { self == .f32 ? .float32 : .float16 }
}

extension OutputKind {
    /// The array's metadata for a run: chunks of one block; NaN fill for the float outputs, so a masked or
    /// unpredicted pixel is never mistaken for a real 0.
    func metadata(grid g: BlockGrid, precision: OutputPrecision) throws -> ArrayMetadata {
        let spatial = [g.depth, g.outHeight, g.outWidth], chunk = [1, g.block, g.block]
        let codec = try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1)
        let dtype: DataType = self == .labels ? .uint8 : precision.dtype
        return ArrayMetadata(shape: hasChannelAxis ? [channels] + spatial : spatial,
                             chunks: hasChannelAxis ? [channels] + chunk : chunk,
                             dtype: dtype, fillValue: self == .labels ? 0 : .nan, codec: codec)
    }

    /// The chunk index of a block.
    func chunkIndex(_ b: OutputBlock, grid g: BlockGrid) -> [Int] {
        let s = [b.z, b.y0 / g.block, b.x0 / g.block]
        return hasChannelAxis ? [0] + s : s
    }

    var dimensionNames: [String] { hasChannelAxis ? ["c", "z", "y", "x"] : ["z", "y", "x"] }
}
