/// What a report or serve command cannot do, phrased for the user: the thing concerned and what to do about it.
public enum ReportError: Error, CustomStringConvertible {
    /// The run or its inputs are missing or unreadable.
    case input(String)
    /// An output could not be written.
    case output(String)

    public var description: String {
        switch self {
        case .input(let s), .output(let s): return s
        }
    }
}
