import Foundation

/// A flag set from a signal handler and read by a step's loop: finish the unit in hand, start no other.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set() { lock.withLock { value = true } }
    public var isSet: Bool { lock.withLock { value } }
}

/// Progress of a step's phase, reported as units finish.
public struct StepProgress: Sendable {
    public var phase: String
    public var done: Int, total: Int
    public init(phase: String, done: Int, total: Int) { self.phase = phase; self.done = done; self.total = total }
}

/// Which of a step's units this process does now: the ones its shard owns (unit id mod N) that no shard finished
/// from the current version of their input.
public struct WorkPlan<Unit> {
    public var todo: [Unit] = []
    /// Finished before, from the same input version (skipped).
    public var alreadyDone = 0
    /// Finished before from an older input version: recomputed (part of `todo`).
    public var stale = 0
    /// Owned by other shards.
    public var otherShards = 0
}

extension StepSession {
    /// The block executor's plan: ownership by `shard`, done markers of this generation, and the input version each
    /// unit must have been computed from (empty: any).
    public func plan<Unit>(_ units: [Unit], id: (Unit) -> Int, version: (Unit) -> String = { _ in "" }) -> WorkPlan<Unit> {
        let done = self.done()
        var p = WorkPlan<Unit>()
        for u in units {
            let i = id(u)
            guard shard.owns(i) else { p.otherShards += 1; continue }
            if let v = done["\(i)"] {
                if v == version(u) { p.alreadyDone += 1; continue }
                p.stale += 1
            }
            p.todo.append(u)
        }
        return p
    }
}
