import ArgumentParser
import Foundation
import NeuralNet
import Pipeline
import VolumeStore

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the paper's network on annotated slices: minibatch Adam, best model by validation accuracy.",
        discussion: """
        Training patches come from --train-slices, each window wholly inside one annotated class; validation patches
        from --val-slices, labelled by their centre pixel (as the paper). Writes MODEL.safetensors (PyTorch state_dict
        names; `predict --model` reads it) when validation accuracy improves, MODEL.json (metrics per epoch, parameters,
        data) and MODEL.safetensors.state after every epoch: re-running the same command resumes after the last
        finished epoch (a larger --epochs trains further). Deterministic for a --seed and --threads.
        """)

    @Option(help: "The raw volume (any source: vol.zarr/raw, https://…, bossdb://…).") var volume: String
    @Option(help: "The annotation volume: integer labels, same shape as the volume.") var annotations: String
    @Option(parsing: .unconditional, help: "Slices to take training patches from: '3', '0:8' or '1,5,9'.") var trainSlices: String
    @Option(parsing: .unconditional, help: "Slices to take validation patches from (others than the training slices).") var valSlices: String
    @Option(help: "Output weights, e.g. model.safetensors.") var out: String
    @Option(help: "Annotation ids → classes: a preset (phantom: 1..6 = CTX HYP STR VP WM ZI; prasad2020) or a JSON file {\"1\": \"CTX\", \"3\": null}.") var labelMap = "phantom"
    @Option(parsing: .unconditional, help: "Epochs (≥ 1).") var epochs = 100
    @Option(parsing: .unconditional, help: "Training patches per class (≥ 1).") var perClass = 2000
    @Option(parsing: .unconditional, help: "Validation patches per class (≥ 1).") var valPerClass = 1000
    @Option(parsing: .unconditional, help: "Minibatch size (≥ 1).") var batch = 32
    @Option(parsing: .unconditional, help: "Adam learning rate (> 0).") var lr: Float = 1e-4
    @Option(parsing: .unconditional, help: "Seed for initialisation, sampling, shuffling and dropout.") var seed: UInt64 = 1
    @Option(help: "valid134 (134² window, no padding: dense inference is exact) or padded128 (the paper's padded patch).") var form = "valid134"
    @Option(parsing: .unconditional, help: "Threads (≥ 1).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "On-the-fly augmentation of training patches: none (the paper's recipe), standard (geometry,blur=1.2,gamma=0.35,contrast=0.3,brightness=0.12) or such a list; geometry = flips and 90° rotations.") var augment = "none"
    @Option(help: "Learning rate over the epochs: constant (the paper's recipe) or cosine (PyTorch's CosineAnnealingLR per epoch, T_max = --epochs, down to 0).") var lrSchedule = "constant"
    @Flag(help: "Class-balanced minibatches (every batch holds each class equally, up to one patch) instead of a plain shuffle.") var balance = false
    @Flag(help: "Discard a saved training state and start over.") var restart = false
    @Flag(help: "No progress bar (epoch lines are still printed).") var quiet = false
    @OptionGroup var sourceFlags: SourceFlags
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        let schedule = try FlagCheck.training(epochs: epochs, perClass: perClass, lr: lr, lrSchedule: lrSchedule)
        for (flag, v) in [("--val-per-class", valPerClass), ("--batch", batch)] { try FlagCheck.atLeast(flag, v, 1) }
        // No upper bound: a model is reproduced with the --threads it was trained with, whatever this machine has.
        try FlagCheck.atLeast("--threads", threads, 1)
        var o = TrainOptions(volume: volume, annotations: annotations, trainSlices: try parseSlices(trainSlices, flag: "--train-slices"),
                             valSlices: try parseSlices(valSlices, flag: "--val-slices"), out: out)
        o.epochs = epochs; o.perClass = perClass; o.valPerClass = valPerClass; o.batch = batch; o.lr = lr; o.seed = seed
        guard let f = NetworkShape.Form(rawValue: form) else { throw ValidationError("--form must be valid134 or padded128") }
        o.form = f; o.threads = threads; o.restart = restart
        o.augment = try Augmentation.parse(augment); o.balance = balance
        o.lrSchedule = schedule
        o.labelMap = try LabelMap.load(labelMap)
        let job = TrainJob(options: o, context: sourceFlags.context())
        let signals = StopSignals(finishing: "the batch in flight (a re-run resumes at the start of the unfinished epoch)") { job.requestStop() }
        defer { signals.cancel() }
        let display = TrainDisplay(quiet: quiet)
        do {
            let s = try await job.run { display.update($0) }
            display.clear()
            if s.resumedAfterEpoch > 0 { say("resumed after epoch \(s.resumedAfterEpoch) (\(o.statePath))") }
            if s.resumedAfterEpoch >= o.epochs && s.statisticsWritten { say("already trained \(s.history.count) epochs; added the latent statistics (for predict --outputs anomaly) to \(o.sidecar)") }
            else if s.history.count > 0 && s.resumedAfterEpoch >= o.epochs { say("already trained \(s.history.count) epochs; --epochs N larger trains further, --restart starts over") }
            for (name, counts) in [("training", s.trainCounts), ("validation", s.valCounts)] where !counts.isEmpty {
                let short = zip(AreaClassifier.classes, counts).filter { $0.1.withReplacement }
                if !short.isEmpty {
                    say("note: \(name) classes with fewer positions than asked, sampled with replacement: "
                        + short.map { "\($0.0) (\($0.1.available) positions)" }.joined(separator: ", "))
                }
            }
            say(String(format: "best epoch %d: validation accuracy %.4f → %@ (metrics in %@)", s.bestEpoch, s.bestValAccuracy, o.out, o.sidecar))
            if s.patchesPerSecond > 0 { say(String(format: "trained at %.1f patches/s, %.1f s in all", s.patchesPerSecond, s.wall)) }
        } catch let e as TrainInterrupted {
            display.clear()
            FileHandle.standardError.write(Data("brainmap train: \(e)\n".utf8))
            throw ExitCode(130)
        }
    }
}

/// Training progress: a live line on a terminal (epoch, batch, running loss/accuracy, rate, ETA of the whole run),
/// and one printed line per finished epoch.
final class TrainDisplay: @unchecked Sendable {
    private let tty = isatty(2) == 1
    private let quiet: Bool
    private let start = Date()
    private var last = Date.distantPast
    private var firstEpoch = 0

    init(quiet: Bool) { self.quiet = quiet }

    func update(_ p: TrainProgress) {
        switch p.phase {
        case let .sampling(what):
            say("sampling \(what)")
        case .training:
            if firstEpoch == 0 { firstEpoch = p.epoch }
            guard tty, !quiet, Date().timeIntervalSince(last) > 0.2 || p.batch == p.batches else { return }
            last = Date()
            let doneBatches = Double((p.epoch - firstEpoch) * p.batches + p.batch)
            let totalBatches = Double((p.epochs - firstEpoch + 1) * p.batches)
            let el = Date().timeIntervalSince(start)
            let eta = el / doneBatches * (totalBatches - doneBatches)
            let f = Double(p.batch) / Double(p.batches), width = 20, filled = Int(f * Double(width))
            let line = "epoch \(p.epoch)/\(p.epochs) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
                + String(format: "%d/%d  loss %.4f  acc %.3f  %.0f patches/s  ETA %@", p.batch, p.batches, p.loss, p.accuracy,
                         p.patchesPerSecond, formatClock(eta))
            FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
        case .validating:
            break
        case let .epochDone(r, best):
            clear()
            say(String(format: "epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f%@ | %.1f s",
                       r.epoch, p.epochs, r.trainLoss, r.trainAccuracy, r.valLoss, r.valAccuracy, best ? " (best, saved)" : "", r.seconds))
        }
    }

    func clear() { if tty && !quiet { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
