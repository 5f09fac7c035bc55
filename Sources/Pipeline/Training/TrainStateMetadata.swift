import Foundation
#if canImport(VolumeStore)
import VolumeStore   // tools/fuzz.sh compiles this file into one module with VolumeStore's sources
#endif

/// One finished training epoch, as MODEL.json and the training state record it.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double, valLoss: Double, valAccuracy: Double, seconds: Double
    enum CodingKeys: String, CodingKey {
        case epoch, seconds
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss", valAccuracy = "val_accuracy"
    }
}

/// What a training state (MODEL.safetensors.state) holds besides its tensors, in its safetensors metadata: the
/// run's identity and history as JSON strings, Adam's step, the best epoch and its accuracy. It is read back from a
/// file a crash, a disk or a person may have damaged, so it is parsed as untrusted (fuzzed: tools/fuzz.sh
/// modelstate): JSON nesting is limited before parsing, and a state that does not hang together (epochs out of
/// order, a best epoch never run, a negative step, a non-finite number) is not a state.
struct TrainStateMetadata: Equatable {
    var identity: [String: String]
    var history: [EpochRecord]
    var adamStep: Int, bestEpoch: Int
    var bestAccuracy: Double

    static func parse(_ meta: [String: String]) -> TrainStateMetadata? {
        guard let idText = meta["identity"], let histText = meta["history"],
              let step = meta["adam_step"].flatMap(Int.init), let best = meta["best_epoch"].flatMap(Int.init),
              let bestAcc = meta["best_accuracy"].flatMap(Double.init) else { return nil }
        let idBytes = Array(idText.utf8), histBytes = Array(histText.utf8)
        guard (try? checkJSONDepth(idBytes, path: "identity")) != nil, (try? checkJSONDepth(histBytes, path: "history")) != nil,
              let id = try? JSONSerialization.jsonObject(with: Data(idBytes)) as? [String: String],
              let history = try? JSONDecoder().decode([EpochRecord].self, from: Data(histBytes)) else { return nil }
        let numbers = history.flatMap { [$0.trainLoss, $0.trainAccuracy, $0.valLoss, $0.valAccuracy, $0.seconds] } + [bestAcc]
        guard history.map(\.epoch) == Array(0..<history.count).map({ $0 + 1 }), step >= 0, (0...history.count).contains(best),
              numbers.allSatisfy(\.isFinite) else { return nil }
        return TrainStateMetadata(identity: id, history: history, adamStep: step, bestEpoch: best, bestAccuracy: bestAcc)
    }
}
