import Foundation
import NeuralNet

extension TrainJob {
    /// The class-conditional latent statistics of a model (LatentStatistics: per class mean and shrunk covariance of
    /// fc2's output at the patches' centre pixels), streamed in chunks of 64 patches through the network without
    /// dropout: memory is one chunk's activations and the moments, whatever the number of patches.
    public static func latentStatistics(parameters: [Tensor], shape: NetworkShape, patches: PatchSampler.Patches,
                                        threads: Int, epoch: Int) throws -> LatentStatistics {
        let bp = Backprop(shape: shape, threads: threads)
        let plane = shape.input * shape.input, chunk = 64
        let d = AreaClassifier.latentSize
        var moments = [Moments](repeating: Moments(d: d), count: AreaClassifier.classes.count)
        var images = [Float](repeating: 0, count: chunk * plane)
        for lo in Swift.stride(from: 0, to: patches.count, by: chunk) {
            let idx = Array(lo..<min(patches.count, lo + chunk))
            fill(&images, from: patches, indices: idx, plane: plane)
            let labels = idx.map { patches.labels[$0] }
            let r = images.withUnsafeBufferPointer {
                bp.run(parameters: parameters, images: UnsafeBufferPointer(rebasing: $0[0..<(idx.count * plane)]), labels: labels,
                       dropout: nil, gradients: false, latents: true)
            }
            for c in Set(labels) {
                let rows = labels.indices.filter { labels[$0] == c }
                let x = rows.flatMap { r.latents[($0 * d)..<(($0 + 1) * d)].map(Double.init) }
                x.withUnsafeBufferPointer { moments[c].add($0.baseAddress!, rows: rows.count) }
            }
        }
        return try LatentStatistics(moments: moments, epoch: epoch)
    }
}
