import Foundation
import ArgumentParser
import Pipeline

/// Range checks of numeric flags, done before any work: every refusal names the flag, the value given and the
/// accepted range (a job deeper down would only know its option's name, or not even that). Numeric options are
/// declared with `parsing: .unconditional` so that `--tile -5` reaches these checks instead of being read as a
/// missing value followed by an unknown flag.
enum FlagCheck {
    /// A benchmark's or the demo's threads: at least 1, and at most 4× this machine's cores (more only contend for
    /// them and measure nothing). train and predict take any count ≥ 1 (a model is reproduced with the count it was
    /// trained with; a Slurm step may see fewer cores than it will use).
    static func threads(_ value: Int, flag: String = "--threads") throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        try range(flag, value, 1...max(1, 4 * cores), "this machine has \(cores) cores")
    }

    /// A benchmark's time per measurement.
    static func seconds(_ value: Double, flag: String = "--seconds") throws {
        guard value.isFinite, value > 0, value <= 3600 else { throw ValidationError("\(flag) \(value): give a time from above 0 to 3600") }
    }

    static func range<T: Comparable>(_ flag: String, _ value: T, _ accepted: ClosedRange<T>, _ why: String = "") throws {
        guard accepted.contains(value) else {
            throw ValidationError("\(flag) \(value) is outside the accepted range \(accepted.lowerBound)…\(accepted.upperBound)"
                + (why.isEmpty ? "" : " (\(why))"))
        }
    }

    static func atLeast<T: Comparable>(_ flag: String, _ value: T, _ minimum: T, _ why: String = "") throws {
        guard value >= minimum else {
            throw ValidationError("\(flag) \(value) is below the accepted minimum \(minimum)" + (why.isEmpty ? "" : " (\(why))"))
        }
    }

    /// A learning rate: finite and above 0 (how high still trains depends on the data; divergence is caught then).
    static func learningRate(_ flag: String, _ value: Float) throws {
        guard value.isFinite, value > 0 else {
            throw ValidationError("\(flag) \(value) must be a finite number above 0 (the paper's Adam uses 1e-4)")
        }
    }

    /// The training flags train and the demo share; returns the schedule named.
    static func training(epochs: Int, perClass: Int, lr: Float, lrSchedule: String) throws -> LearningRateSchedule {
        try atLeast("--epochs", epochs, 1)
        try atLeast("--per-class", perClass, 1)
        try learningRate("--lr", lr)
        guard let s = LearningRateSchedule(rawValue: lrSchedule) else {
            throw ValidationError("--lr-schedule \(lrSchedule): use \(LearningRateSchedule.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        return s
    }
}
