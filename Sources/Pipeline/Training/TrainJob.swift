import Foundation
import NeuralNet
import VolumeStore

/// Everything `brainmap train` is asked to do. Defaults are the paper's (Adam lr 1e-4, batch 32, 100 epochs,
/// ~2,000 training and 1,000 validation patches per class) and the valid134 form, for which dense inference is exact.
public struct TrainOptions: Sendable {
    public var volume: String, annotations: String
    public var trainSlices: [Int], valSlices: [Int]
    public var out: String
    public var epochs = 100, perClass = 2000, valPerClass = 1000, batch = 32
    public var lr: Float = 1e-4
    public var seed: UInt64 = 1
    public var form: NetworkShape.Form = .valid134
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var labelMap: LabelMap = .phantom
    public var restart = false
    /// On-the-fly augmentation of the training patches (none: the paper's recipe).
    public var augment = Augmentation()
    /// Per-batch class balance (Augmentation.balancedOrder) instead of a plain shuffle.
    public var balance = false
    /// How the learning rate changes over the epochs (constant: the paper's recipe).
    public var lrSchedule = LearningRateSchedule.constant

    public init(volume: String, annotations: String, trainSlices: [Int], valSlices: [Int], out: String) {
        self.volume = volume; self.annotations = annotations; self.trainSlices = trainSlices; self.valSlices = valSlices; self.out = out
    }

    /// What must be equal to resume a run (epochs may grow: resuming trains further).
    var identity: [String: String] {
        ["volume": redactingCredentials(volume), "annotations": redactingCredentials(annotations),
         "train_slices": trainSlices.map(String.init).joined(separator: ","), "val_slices": valSlices.map(String.init).joined(separator: ","),
         "per_class": "\(perClass)", "val_per_class": "\(valPerClass)", "batch": "\(batch)", "lr": "\(lr)", "seed": "\(seed)",
         "form": form.rawValue, "threads": "\(threads)", "label_map": labelMap.name]
            // Recorded only when used, so states written before these options existed still resume.
            .merging(augment.isIdentity ? [:] : ["augment": augment.description]) { a, _ in a }
            .merging(balance ? ["balance": "per-batch"] : [:]) { a, _ in a }
            // A decaying rate depends on the total: such a run cannot grow its --epochs.
            .merging(lrSchedule == .constant ? [:] : ["lr_schedule": lrSchedule.rawValue, "epochs": "\(epochs)"]) { a, _ in a }
    }

    /// The sidecar JSON beside the weights: MODEL.safetensors → MODEL.json.
    public var sidecar: String { LatentStatistics.sidecarPath(of: out) }
    /// Training state after the last finished epoch (weights, Adam moments, history), for resuming.
    public var statePath: String { out + ".state" }
}

public struct TrainProgress: Sendable {
    public enum Phase: Sendable { case sampling(String), training, validating, epochDone(EpochRecord, best: Bool) }
    public var phase: Phase
    public var epoch = 0, epochs = 0, batch = 0, batches = 0
    /// Running means over the epoch so far.
    public var loss = 0.0, accuracy = 0.0
    public var patchesPerSecond = 0.0
}

public struct TrainSummary: Sendable {
    public var history: [EpochRecord] = []
    public var bestEpoch = 0, bestValAccuracy = 0.0
    public var resumedAfterEpoch = 0
    public var trainCounts: [PatchSampler.ClassCount] = [], valCounts: [PatchSampler.ClassCount] = []
    public var patchesPerSecond = 0.0
    public var wall = 0.0
    /// The latent statistics were computed (and written to the sidecar) by this run.
    public var statisticsWritten = false
}

/// Thrown when a stop was requested; the state holds the last finished epoch.
public struct TrainInterrupted: Error, CustomStringConvertible {
    public let epochsDone: Int
    public var description: String { "stopped after \(epochsDone) finished epochs; re-run the same command to resume" }
}

/// Samples patches, trains with minibatch Adam, validates after every epoch, keeps the best model by validation
/// accuracy (ties keep the earlier epoch), and saves a resumable state after every epoch.
public final class TrainJob: @unchecked Sendable {
    public let options: TrainOptions
    private let context: SourceOptions
    private let stopFlag = StopFlag()

    public init(options: TrainOptions, context: SourceOptions) { self.options = options; self.context = context }
    public func requestStop() { stopFlag.set() }

    public func run(progress: @escaping (TrainProgress) -> Void = { _ in }) async throws -> TrainSummary {
        let o = options, start = Date()
        try validate()
        let shape = NetworkShape.paper(o.form)
        var state = try loadState(shape: shape)
        var summary = TrainSummary()
        summary.resumedAfterEpoch = state.history.count
        summary.history = state.history
        // Done, unless the latent statistics of the saved model are missing (a model trained before they existed,
        // or a stop between the last epoch and them): then sample the patches again and add them.
        if state.history.count >= o.epochs && Self.hasStatistics(sidecar: o.sidecar, epoch: state.bestEpoch, weights: o.out) {
            summary.bestEpoch = state.bestEpoch; summary.bestValAccuracy = state.bestAccuracy
            return summary
        }

        let volume = try await VolumeSource.open(o.volume, options: context)
        let annotations = try await VolumeSource.open(o.annotations, options: context)
        let sampler = try PatchSampler(volume: volume, annotations: annotations, map: o.labelMap, window: o.form.window)
        try sampler.checkSlices(o.trainSlices, flag: "--train-slices")
        try sampler.checkSlices(o.valSlices, flag: "--val-slices")
        progress(TrainProgress(phase: .sampling("training patches (whole window inside one class) from slices \(o.trainSlices.map(String.init).joined(separator: ","))")))
        let train = try await sampler.sample(slices: o.trainSlices, rule: .wholeWindow, perClass: o.perClass, seed: o.seed, flag: "--train-slices")
        progress(TrainProgress(phase: .sampling("validation patches (centre pixel's class) from slices \(o.valSlices.map(String.init).joined(separator: ","))")))
        let val = try await sampler.sample(slices: o.valSlices, rule: .centre, perClass: o.valPerClass, seed: o.seed, flag: "--val-slices")
        summary.trainCounts = train.counts; summary.valCounts = val.counts

        let bp = Backprop(shape: shape, threads: o.threads)
        let side = shape.input, plane = side * side
        let batches = (train.count + o.batch - 1) / o.batch
        var trained = 0, trainSeconds = 0.0
        for epoch in Swift.stride(from: state.history.count + 1, through: o.epochs, by: 1) {
            let epochStart = Date()
            state.adam.lr = o.lrSchedule.rate(base: o.lr, epoch: epoch, of: o.epochs)
            // The epoch's order: a Fisher–Yates shuffle from (seed, epoch).
            var order = Array(0..<train.count)
            if o.balance {
                order = Augmentation.balancedOrder(labels: train.labels, classes: AreaClassifier.classes.count, seed: o.seed, epoch: epoch)
            } else {
                var rng = SeededRandom(seed: o.seed, stream: 100, index: UInt64(epoch))
                for i in Swift.stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.next(below: i + 1)) }
            }
            var lossSum = 0.0, correct = 0, seen = 0
            var images = [Float](repeating: 0, count: min(o.batch, train.count) * plane)   // a --batch above the patches is one batch
            for b in 0..<batches {
                if stopFlag.isSet { throw TrainInterrupted(epochsDone: state.history.count) }
                let idx = Array(order[(b * o.batch)..<min(train.count, (b + 1) * o.batch)])
                if o.augment.isIdentity { Self.fill(&images, from: train, indices: idx, plane: plane) }
                else { augment(&images, from: train, indices: idx, side: side, epoch: epoch, first: b * o.batch) }
                let labels = idx.map { train.labels[$0] }
                let masks = Backprop.dropoutMasks(shape: shape, seed: o.seed, stream: UInt64(epoch), first: b * o.batch, count: idx.count)
                let r = images.withUnsafeBufferPointer {
                    bp.run(parameters: state.parameters, images: UnsafeBufferPointer(rebasing: $0[0..<(idx.count * plane)]),
                           labels: labels, dropout: masks, gradients: true)
                }
                try TrainDiverged.check(r.lossSum, "the training loss", epoch: epoch, batch: b + 1, batches: batches, options: o,
                                        epochsDone: state.history.count)
                state.adam.update(&state.parameters, gradients: r.gradients, threads: o.threads)
                lossSum += r.lossSum; seen += idx.count
                correct += zip(r.predictions, labels).filter { $0 == $1 }.count
                var p = TrainProgress(phase: .training, epoch: epoch, epochs: o.epochs, batch: b + 1, batches: batches)
                p.loss = lossSum / Double(seen); p.accuracy = Double(correct) / Double(seen)
                p.patchesPerSecond = Double(seen) / Date().timeIntervalSince(epochStart)
                progress(p)
            }
            trained += seen; trainSeconds += Date().timeIntervalSince(epochStart)
            progress(TrainProgress(phase: .validating, epoch: epoch, epochs: o.epochs))
            // Never validate, save or record weights that are not numbers (a finite last loss can precede them).
            try TrainDiverged.check(parameters: state.parameters, names: shape.parameterShapes.map(\.0), epoch: epoch,
                                    batches: batches, options: o, epochsDone: state.history.count)
            let (valLoss, valAcc) = evaluate(bp, parameters: state.parameters, patches: val, plane: plane)
            try TrainDiverged.check(valLoss, "the validation loss", epoch: epoch, batch: batches, batches: batches, options: o,
                                    epochsDone: state.history.count)
            let record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
                                     valLoss: valLoss, valAccuracy: valAcc, seconds: Date().timeIntervalSince(epochStart))
            state.history.append(record)
            let best = valAcc > state.bestAccuracy || state.bestEpoch == 0
            if best {
                state.bestAccuracy = valAcc; state.bestEpoch = epoch
                try saveModel(state.parameters, shape: shape, epoch: epoch)
            }
            try writeSidecar(state: state, train: train, val: val)
            try saveState(state, shape: shape)
            progress(TrainProgress(phase: .epochDone(record, best: best), epoch: epoch, epochs: o.epochs))
        }
        // The anomaly map's statistics: latents of the saved (best) model over the training patches, unaugmented.
        progress(TrainProgress(phase: .sampling("latent statistics per class (for predict --outputs anomaly) over the training patches")))
        let saved = try Safetensors.load(path: o.out)
        let best = try shape.parameterShapes.map { name, _ in
            guard let t = saved[name] else { throw PipelineError.input("\(o.out) lacks \(name); remove it and the state, or add --restart") }
            return t
        }
        let statistics = try Self.latentStatistics(parameters: best, shape: shape, patches: train, threads: o.threads, epoch: state.bestEpoch)
        try writeSidecar(state: state, train: train, val: val, statistics: statistics)
        summary.statisticsWritten = true
        summary.history = state.history
        summary.bestEpoch = state.bestEpoch; summary.bestValAccuracy = state.bestAccuracy
        summary.patchesPerSecond = trainSeconds > 0 ? Double(trained) / trainSeconds : 0
        summary.wall = Date().timeIntervalSince(start)
        return summary
    }

    private func validate() throws {
        let o = options
        guard o.epochs > 0, o.perClass > 0, o.valPerClass > 0, o.batch > 0, o.lr > 0, o.threads > 0 else {
            throw PipelineError.input("--epochs, --per-class, --val-per-class, --batch, --lr and --threads must be positive")
        }
        guard !o.trainSlices.isEmpty, !o.valSlices.isEmpty else { throw PipelineError.input("--train-slices and --val-slices must name slices") }
        if !Set(o.trainSlices).isDisjoint(with: o.valSlices) {
            throw PipelineError.input("--val-slices \(o.valSlices.filter(Set(o.trainSlices).contains)) are also training slices; validation patches come from other slices")
        }
        // Fail now, not after an epoch, if the output cannot be written.
        let dir = (o.out as NSString).deletingLastPathComponent
        let probe = OutputPath.temporary(beside: o.out)
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw PipelineError.input("cannot write the model to \(o.out): \(dir.isEmpty ? "." : dir) is not a writable directory")
        }
        OutputPath.remove(probe)
    }

    /// Batch images as floats in [0, 1].
    static func fill(_ images: inout [Float], from p: PatchSampler.Patches, indices: [Int], plane: Int) {
        p.images.withUnsafeBufferPointer { src in images.withUnsafeMutableBufferPointer { dst in
            for (k, i) in indices.enumerated() {
                let s = src.baseAddress! + i * plane, d = dst.baseAddress! + k * plane
                for j in 0..<plane { d[j] = Float(s[j]) * (1 / 255) }
            }
        } }
    }

    /// Batch images augmented on the fly, one patch per task over the threads; patch k's transform is drawn from
    /// (seed, epoch, first + k), so it does not depend on the thread count.
    private func augment(_ images: inout [Float], from p: PatchSampler.Patches, indices: [Int], side: Int, epoch: Int, first: Int) {
        let plane = side * side, a = options.augment, seed = options.seed
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: indices.count * plane)
        defer { scratch.deallocate() }
        let s = UncheckedSendable(scratch)
        p.images.withUnsafeBufferPointer { src in images.withUnsafeMutableBufferPointer { dst in
            let from = UncheckedSendable(src.baseAddress!), to = UncheckedSendable(dst.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: indices.count) { k in
                let d = a.draw(seed: seed, epoch: epoch, sample: first + k)
                Augmentation.apply(d, source: from.value + indices[k] * plane, side: side, to: to.value + k * plane,
                                   scratch: s.value + k * plane)
            }
        } }
    }

    /// Mean loss and accuracy on the validation patches (no dropout).
    private func evaluate(_ bp: Backprop, parameters: [Tensor], patches: PatchSampler.Patches, plane: Int) -> (Double, Double) {
        let chunk = 64
        var images = [Float](repeating: 0, count: chunk * plane)
        var loss = 0.0, correct = 0
        for lo in Swift.stride(from: 0, to: patches.count, by: chunk) {
            let idx = Array(lo..<min(patches.count, lo + chunk))
            Self.fill(&images, from: patches, indices: idx, plane: plane)
            let labels = idx.map { patches.labels[$0] }
            let r = images.withUnsafeBufferPointer {
                bp.run(parameters: parameters, images: UnsafeBufferPointer(rebasing: $0[0..<(idx.count * plane)]), labels: labels,
                       dropout: nil, gradients: false)
            }
            loss += r.lossSum; correct += zip(r.predictions, labels).filter { $0 == $1 }.count
        }
        return (loss / Double(patches.count), Double(correct) / Double(patches.count))
    }

    // MARK: files

    struct State {
        var parameters: [Tensor]
        var adam: Adam
        var history: [EpochRecord] = []
        var bestEpoch = 0, bestAccuracy = 0.0
    }

    private func named(_ tensors: [Tensor], _ shape: NetworkShape, prefix: String = "") -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: zip(shape.parameterShapes, tensors).map { (prefix + $0.0.0, $0.1) })
    }

    private func saveModel(_ p: [Tensor], shape: NetworkShape, epoch: Int) throws {
        let tmp = OutputPath.temporary(beside: options.out)
        try Safetensors.save(named(p, shape), path: tmp,
                             metadata: ["format": "pt", "form": options.form.rawValue, "epoch": "\(epoch)", "brainmap": brainmapVersion])
        try OutputPath.replace(options.out, with: tmp)
    }

    private func saveState(_ s: State, shape: NetworkShape) throws {
        var t = named(s.parameters, shape)
        for (i, (name, dims)) in shape.parameterShapes.enumerated() {
            t["adam.m." + name] = Tensor(shape: dims, data: s.adam.m[i])
            t["adam.v." + name] = Tensor(shape: dims, data: s.adam.v[i])
        }
        let history = String(decoding: try JSONEncoder().encode(s.history), as: UTF8.self)
        let identity = String(decoding: try JSONSerialization.data(withJSONObject: options.identity, options: [.sortedKeys]), as: UTF8.self)
        let tmp = OutputPath.temporary(beside: options.statePath)
        try Safetensors.save(t, path: tmp, metadata: ["identity": identity, "history": history, "adam_step": "\(s.adam.step)",
                                                      "best_epoch": "\(s.bestEpoch)", "best_accuracy": "\(s.bestAccuracy)"])
        try OutputPath.replace(options.statePath, with: tmp)
    }

    /// The state to continue from: fresh (PyTorch's initialisation from the seed) unless a state with the same
    /// identity exists. Another identity is refused, naming each difference.
    private func loadState(shape: NetworkShape) throws -> State {
        let o = options
        let fresh = State(parameters: shape.initialParameters(seed: o.seed),
                          adam: Adam(sizes: shape.parameterShapes.map { $0.1.reduce(1, *) }, lr: o.lr))
        if o.restart { OutputPath.remove(o.statePath); return fresh }
        guard FileManager.default.fileExists(atPath: o.statePath) else { return fresh }
        let (tensors, meta) = try Safetensors.loadWithMetadata(path: o.statePath)
        guard let saved = TrainStateMetadata.parse(meta) else {
            throw PipelineError.input("\(o.statePath) is not a brainmap training state; remove it or add --restart")
        }
        let id = saved.identity
        let want = o.identity
        // Both ways: an option the state was trained with and this command drops (--augment, --balance) differs too.
        let diffs = Set(want.keys).union(id.keys).sorted().compactMap { k in
            id[k] == want[k] ? nil : "\(k): \(id[k] ?? "–") (saved) vs \(want[k] ?? "–") (now)"
        }
        if !diffs.isEmpty { throw PipelineError.mismatch(run: o.statePath, differences: diffs) }
        var state = fresh
        for (i, (name, dims)) in shape.parameterShapes.enumerated() {
            guard let p = tensors[name], let m = tensors["adam.m." + name], let v = tensors["adam.v." + name],
                  p.shape == dims, m.shape == dims, v.shape == dims else {
                throw PipelineError.input("\(o.statePath) lacks \(name) or its Adam moments; remove it or add --restart")
            }
            state.parameters[i] = p; state.adam.m[i] = m.data; state.adam.v[i] = v.data
        }
        try FiniteWeights.check(shape.parameterShapes.enumerated().map { ($0.element.0, state.parameters[$0.offset]) }, path: o.statePath)
        state.adam.step = saved.adamStep; state.history = saved.history; state.bestEpoch = saved.bestEpoch
        state.bestAccuracy = saved.bestAccuracy
        return state
    }

    /// Whether the sidecar holds latent statistics of the given epoch's model, computed with these `weights` (when it
    /// records which: a sidecar beside weights that were replaced is made again).
    static func hasStatistics(sidecar: String, epoch: Int, weights: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: sidecar),
              let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let stats = doc["latent_statistics"] as? [String: Any], stats["epoch"] as? Int == epoch else { return false }
        guard let recorded = doc["weights_sha256"] as? String else { return true }
        return (try? SHA256.file(weights)) == recorded
    }

    private func writeSidecar(state: State, train: PatchSampler.Patches, val: PatchSampler.Patches, statistics: LatentStatistics? = nil) throws {
        let o = options
        func counts(_ p: PatchSampler.Patches) -> [String: Any] {
            Dictionary(uniqueKeysWithValues: zip(AreaClassifier.classes, p.counts).map {
                ($0, ["available": $1.available, "sampled": $1.sampled, "with_replacement": $1.withReplacement] as [String: Any])
            })
        }
        let history = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(state.history))) as? [Any] ?? []
        let doc: [String: Any] = [
            "format": "brainmap-model/1",
            "weights": (o.out as NSString).lastPathComponent,
            "architecture": "paper Net (conv 7/5/3/3, fc 1024/64/6, dropout 0.3)",
            "form": o.form.rawValue, "window": o.form.window,
            "classes": AreaClassifier.classes,
            "best_epoch": state.bestEpoch, "best_val_accuracy": state.bestAccuracy,
            "epochs": history,
            "parameters": ["epochs": o.epochs, "per_class": o.perClass, "val_per_class": o.valPerClass, "batch": o.batch,
                           "lr": Double(o.lr), "lr_schedule": o.lrSchedule.rawValue, "betas": [0.9, 0.999], "eps": 1e-8, "dropout": 0.3, "seed": o.seed,
                           "threads": o.threads, "init": "PyTorch default (uniform ±1/sqrt(fan_in))",
                           "augment": o.augment.description, "batches": o.balance ? "class-balanced" : "shuffled"] as [String: Any],
            "data": ["volume": redactingCredentials(o.volume), "annotations": redactingCredentials(o.annotations),
                     "train_slices": o.trainSlices, "val_slices": o.valSlices, "label_map": o.labelMap.record,
                     "label_map_name": o.labelMap.name, "train_rule": "whole window inside one class",
                     "val_rule": "centre pixel's class", "train": counts(train), "val": counts(val)] as [String: Any],
            "brainmap_version": brainmapVersion,
            "openblas": BLAS.config, "openblas_core": BLASCore.record,
        ]
        var full = doc
        if let statistics {
            full["latent_statistics"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(statistics))
            // The weights they were computed with: predict refuses them beside other weights.
            full["weights_sha256"] = try SHA256.file(o.out)
        }
        let data = try JSONSerialization.data(withJSONObject: full, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        let tmp = OutputPath.temporary(beside: o.sidecar)
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw PipelineError.input("cannot write \(o.sidecar)")
        }
        try OutputPath.replace(o.sidecar, with: tmp)
    }
}
