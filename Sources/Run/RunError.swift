/// Errors about a run's state; each says what is wrong and what to run.
public enum RunError: Error, CustomStringConvertible, Sendable {
    /// Not a run, unreadable state, an array that is not the run's…
    case input(String)
    /// A step's saved work was made with other parameters and the step does not replace it by itself (predict).
    case mismatch(run: String, step: String, differences: [String], hint: String)
    /// A waiting shard gave up (`--wait-timeout`) or found a peer dead.
    case shards(String)

    public var description: String {
        switch self {
        case let .input(s): return s
        case let .mismatch(run, step, diffs, hint):
            return "\(run) holds a \(step) with other parameters:\n  " + diffs.joined(separator: "\n  ") + "\n" + hint
        case let .shards(s): return s
        }
    }
}
