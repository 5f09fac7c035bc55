import Foundation

/// The learning rate of each epoch. `cosine` is PyTorch's CosineAnnealingLR stepped once per epoch with
/// T_max = the run's epochs and eta_min = 0: epoch e (1-based) trains at lr·(1 + cos(π·(e−1)/epochs))/2, from the
/// full rate down to a small fraction of it in the last epoch. A short run ends on a settled model instead of
/// wherever the last constant-rate step left it (the demo's 12-epoch models differ most in that).
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    case constant, cosine

    public func rate(base: Float, epoch: Int, of epochs: Int) -> Float {
        switch self {
        case .constant: return base
        case .cosine:
            let t = Double(max(0, min(epoch - 1, epochs))) / Double(max(epochs, 1))
            return Float(Double(base) * (1 + Foundation.cos(Double.pi * t)) / 2)
        }
    }
}
