import Foundation

/// `--pass`: how a process takes part in an iterative step (factorize, cluster) whose shards do not run at once —
/// Slurm array tasks, Kubernetes Indexed Job pods. Each pass is a map (every shard computes its blocks' mergeable
/// statistics, publishes them and exits) followed by a reduce (one process merges them and publishes the parameters
/// of the next pass, or the result). No process waits for another; the scheduler orders them.
public enum PassMode: Sendable, Equatable {
    /// This shard's statistics for the next pass, from the parameters the last reduce published.
    case map
    /// Merge the `tasks` map tasks' statistics of the next pass; publish the next parameters or the result.
    case reduce(tasks: Int)

    /// `map` or `reduce/N`.
    public init(flag: String) throws {
        if flag == "map" { self = .map; return }
        let p = flag.split(separator: "/", omittingEmptySubsequences: false)
        guard p.count == 2, p[0] == "reduce", let n = Int(p[1]), n >= 1 else {
            throw RunError.input("--pass must be map or reduce/N (N = the map tasks' count, e.g. reduce/100); got '\(flag)'")
        }
        self = .reduce(tasks: n)
    }
}

/// This process's part of the pass is done (map: its statistics are published; reduce: the merged pass and the next
/// parameters are): it ends here, successfully. `description` says what was published.
public struct PassEnd: Error, CustomStringConvertible {
    public let description: String
    /// Why the step's generation started, if this process started it (the session's notes).
    public var notes: [String] = []
}

/// The passes of one step generation as this process takes part in them. A step is written once, as its one-process
/// sequence of passes; at each pass it asks `merged` for the pass's statistics over all blocks, and this decides who
/// computes and who merges:
/// - one process: computes them over all blocks.
/// - shards started together (`--shard I/N`): each computes its blocks', publishes them and waits for the others'
///   (ShardExchange.gather); all merge the same N in shard order.
/// - `--pass map`: computes its blocks' statistics for the first pass not yet reduced, publishes them, ends (PassEnd).
/// - `--pass reduce/N`: merges the N published statistics of the first pass not yet reduced (refusing when a shard's
///   are missing); the step then saves its state — the next pass's parameters — and at its next `merged` the process
///   ends. The last pass's reduce finishes the step instead (result, arrays swapped in).
/// Which pass is next comes from the state the last reduce saved, so map and reduce jobs are interchangeable from
/// one pass to the next, a rerun resumes, and jobs after the step is complete find it so and exit at once.
public final class StepPasses: @unchecked Sendable {
    public enum Role: Sendable, Equatable { case whole, together, map, reduce }
    public let role: Role
    public let session: StepSession
    let exchange: ShardExchange?
    let waiting: (String) -> Void
    /// The pass this reduce process merged.
    private var reduced: String?
    /// The file in the generation's directory holding the parameters after the last merged pass.
    public static let stateFile = "state.json"

    public init(session: StepSession, mode: PassMode?, parameters: [String: String], timeout: Double, command: String,
                waiting: @escaping (String) -> Void) throws {
        self.session = session; self.waiting = waiting
        switch mode {
        case nil:
            role = session.shard.count > 1 ? .together : .whole
            exchange = role == .together ? try ShardExchange(session: session, parameters: parameters, timeout: timeout, command: command) : nil
        case .map:
            role = .map
            exchange = try ShardExchange(session: session, parameters: parameters, command: command, waits: false)
        case let .reduce(n):
            role = .reduce
            session.markerName = "reduce"
            exchange = try ShardExchange(session: session, shard: try Shard(index: 0, count: n), parameters: parameters, command: command, waits: false)
        }
    }

    /// Whether this process writes the step's state file (the parameters after the last merged pass): it does when it
    /// merges alone (one process, reduce); shards started together keep their published statistics instead.
    public var keepsState: Bool { role == .whole || role == .reduce }
    /// Whether this process starts from the state file: map tasks too (it holds the parameters of their pass).
    public var readsState: Bool { role != .together }

    /// The statistics of pass `tag` over all blocks (see the type's comment). `compute` gives this process's blocks'
    /// statistics; `merge` merges every shard's, in shard order.
    public func merged<T: Codable>(_ tag: String, compute: () async throws -> T, merge: ([T]) -> T) async throws -> T {
        switch role {
        case .whole:
            return try await compute()
        case .together:
            let ex = exchange!
            if try ex.mine(tag, as: T.self) == nil {
                try ex.publish(tag, try await compute())
                try session.markDone(tag)
            }
            return merge(try await ex.gather(tag, as: T.self, waiting: waiting))
        case .map:
            let ex = exchange!
            if try ex.mine(tag, as: T.self) == nil {
                let start = Date()
                let stats = try await compute()
                let work = Date().timeIntervalSince(start)   // the blocks' share of the task (tools/bench/passes_bench.sh)
                try ex.publish(tag, stats)
                try session.markDone(tag)
                throw end("shard \(ex.shard) published '\(tag)' (its blocks: \(String(format: "%.3f", work)) s); the reduce merges it")
            }
            throw end("shard \(ex.shard) had already published '\(tag)'; the reduce merges it")
        case .reduce:
            let ex = exchange!
            if let r = reduced {
                // The step saved the parameters after `r` before asking for the next pass: only now is `r` merged.
                try session.markDone(r)
                throw end("merged '\(r)' of \(ex.shard.count) shards and saved the next pass's parameters; the next map pass is '\(tag)'")
            }
            // Run again after its pass was merged (no map task has published the next one, and the state after the
            // last merged pass is saved, or a pass whose result the step keeps elsewhere — cluster --principal's
            // components — was marked merged): nothing to do, as a map task that finds its pass published.
            let merged = FileManager.default.fileExists(atPath: session.statePath(Self.stateFile))
                || DoneMarkers.lastPerShard(directory: session.directory)["reduce"] != nil
            if ex.publishedCount(tag) == 0 && merged {
                throw end("nothing to merge: the last pass was merged already and no map task has published the next one, '\(tag)', yet "
                          + "(\(session.commandLine) --pass map --shard I/\(ex.shard.count) for each I, then this reduce)")
            }
            let parts = try ex.collect(tag, as: T.self)
            reduced = tag
            return merge(parts)
        }
    }

    private func end(_ description: String) -> PassEnd { PassEnd(description: description, notes: session.notes) }

    /// The step is complete: its arrays and results move into place (StepSession.finish); a reduce then records
    /// the last pass it merged.
    public func finish(arrays: [String], results: [String: String] = [:]) throws {
        try session.finish(arrays: arrays, results: results)
        if role == .reduce, let r = reduced { try session.markDone(r) }
    }

    /// Publishes this shard's sample of its rows (shards only) for `sample`.
    public func publishSample(_ rows: [Double], seen: Int, d: Int, size: Int, blocks: Int, tag: String) throws {
        try exchange?.publishSample(rows, seen: seen, d: d, size: size, blocks: blocks, tag: tag)
    }

    /// The sample over all blocks: one process's own; otherwise drawn from every shard's published sample (shards
    /// started together wait for them) — the same rows in every process.
    public func sample(_ tag: String, own: @autoclosure () -> (rows: [Double], seen: Int), d: Int, size: Int) async throws -> (rows: [Double], seen: Int) {
        guard let ex = exchange else { return own() }
        return try await ex.sample(tag, d: d, size: size, wait: role == .together, waiting: waiting)
    }
}
