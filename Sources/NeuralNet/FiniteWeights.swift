/// Weights holding NaN or ±infinity (a training run that diverged, a corrupt file) make every prediction NaN —
/// argmax then picks class 0 everywhere and nothing says so. They are refused where weights enter: at model load,
/// naming the tensor, and before training writes a model or its state.
public enum FiniteWeights {
    public struct Finding: Sendable, Equatable {
        public let name: String, count: Int, firstIndex: Int
    }

    /// The first tensor (in the given order) with a non-finite element: its name, how many, and the first one's index.
    public static func firstNonFinite(_ tensors: [(name: String, tensor: Tensor)]) -> Finding? {
        for (name, t) in tensors {
            var count = 0, first = -1
            t.data.withUnsafeBufferPointer { d in
                for i in d.indices where !d[i].isFinite { count += 1; if first < 0 { first = i } }
            }
            if count > 0 { return Finding(name: name, count: count, firstIndex: first) }
        }
        return nil
    }

    /// Throws naming the first tensor with a non-finite element; `path` names the file (or "(memory)").
    public static func check(_ tensors: [(name: String, tensor: Tensor)], path: String) throws {
        guard let f = firstNonFinite(tensors) else { return }
        throw NeuralNetError.weights(path: path, reason: "tensor '\(f.name)' holds \(f.count) non-finite values (NaN or ±infinity; "
            + "the first at element \(f.firstIndex)): the model diverged in training or the file is corrupt, and every prediction "
            + "would be NaN. Retrain it (a lower --lr) or use another model")
    }
}
