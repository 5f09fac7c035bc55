import NeuralNet

/// Training stopped because the loss or the weights stopped being numbers (a learning rate too high for the data, or
/// an exploding gradient). Nothing of the diverged epoch is written: the model file keeps the best finished epoch
/// and the state the last finished one, so no NaN weights reach `predict`.
public struct TrainDiverged: Error, CustomStringConvertible {
    public let epoch: Int, batch: Int, batches: Int
    public let lr: Float
    /// What went non-finite: "the training loss", "the validation loss", "tensor 'fc1.weight' after the update".
    public let what: String
    public let epochsDone: Int
    public let model: String

    public var description: String {
        let kept = epochsDone > 0
            ? "\(model) and its state keep epochs 1–\(epochsDone) (the best model and the last finished epoch)"
            : "no model was written"
        return "training diverged at epoch \(epoch), batch \(batch)/\(batches) with --lr \(lr): \(what) is not finite (NaN or "
            + "±infinity). Nothing of this epoch was written; \(kept). Try a learning rate 10× lower (--lr \(lr / 10); the "
            + "paper uses 1e-4) and add --restart (the saved state records this learning rate)"
    }

    /// Throws when `value` is not finite.
    static func check(_ value: Double, _ what: String, epoch: Int, batch: Int, batches: Int, options o: TrainOptions,
                      epochsDone: Int) throws {
        guard !value.isFinite else { return }
        throw TrainDiverged(epoch: epoch, batch: batch, batches: batches, lr: o.lr, what: what, epochsDone: epochsDone, model: o.out)
    }

    /// Throws naming the first parameter tensor with a non-finite element.
    static func check(parameters: [Tensor], names: [String], epoch: Int, batches: Int, options o: TrainOptions,
                      epochsDone: Int) throws {
        guard let f = FiniteWeights.firstNonFinite(Array(zip(names, parameters)).map { (name: $0.0, tensor: $0.1) }) else { return }
        throw TrainDiverged(epoch: epoch, batch: batches, batches: batches, lr: o.lr,
                            what: "tensor '\(f.name)' after the epoch's updates (\(f.count) elements)", epochsDone: epochsDone, model: o.out)
    }
}
