import VolumeStore

/// Errors of a prediction run; each says what is wrong and what to do.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    /// Bad parameters or inputs (wrong dtype, slices out of range, a mask of another shape…).
    case input(String)
    /// The run directory holds a run with other parameters.
    case mismatch(run: String, differences: [String])
    /// The memory budget cannot hold even one tile.
    case budget(String)
    /// The run was stopped by a signal before it finished; it can be resumed.
    case interrupted(remaining: Int)

    /// The message, with any `user:password@` of a URL in it redacted.
    public var description: String { redactingCredentials(message) }

    var message: String {
        switch self {
        case let .input(s): return s
        case let .mismatch(run, diffs):
            return "\(run) holds a run with other parameters:\n  " + diffs.joined(separator: "\n  ")
                + "\nRe-run with the same parameters to resume it, add --restart to start it over, or choose another --out."
        case let .budget(s): return s
        case let .interrupted(n): return "stopped with \(n) blocks left; re-run the same command to resume"
        }
    }
}
