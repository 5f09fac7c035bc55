#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How the N shards (`--shard I/N`) of one step generation share each pass's statistics: each accumulates the
/// statistics of its units and publishes them atomically (temp + fsync + rename) under the generation's `exchange/`
/// directory — its own file per pass, never one another shard writes. Who merges them depends on how the shards run
/// (StepPasses): shards started together wait for the others' files of the same pass and each merges all N in shard
/// order, so every process takes the same next step (`gather`); map tasks that run at any time only publish, and one
/// reduce process merges them once all are there (`collect`, which never waits). A published file is checked on
/// reading (whole JSON, this step's parameters, the shard it claims): a short or foreign file is an error, never
/// skipped. The computation is deterministic, so a restarted shard reuses its own published passes (its resume).
///
/// A waiting shard never hangs silently: it says which shards it waits for, reports a shard whose heartbeat (a file
/// each waiting process touches every few seconds) is older than `deadAfter`, and gives up after `timeout`.
public final class ShardExchange: @unchecked Sendable {
    public let directory: String
    public let shard: Shard
    public let parameters: [String: String]
    public var timeout: Double
    public var deadAfter: Double = 60
    /// The command to show in messages about missing shards.
    public let command: String
    private var heartbeat: DispatchSourceTimer?

    /// `shard`: this process's place (default: the session's); a reduce process gives only N right, its index is
    /// unused. `waits`: whether it will wait for the others (then it keeps a heartbeat for them to see).
    public init(session: StepSession, shard: Shard? = nil, parameters: [String: String], timeout: Double = 3600, command: String, waits: Bool = true) throws {
        directory = session.directory + "/exchange"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.shard = shard ?? session.shard; self.parameters = parameters; self.timeout = timeout; self.command = command
        if waits { startHeartbeat() }
    }

    deinit { heartbeat?.cancel() }

    private func heartbeatPath(_ i: Int) -> String { "\(directory)/heartbeat-shard-\(i)-of-\(shard.count)" }

    private func startHeartbeat() {
        let path = heartbeatPath(shard.index)
        let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        t.schedule(deadline: .now(), repeating: 5)
        t.setEventHandler { FileManager.default.createFile(atPath: path, contents: Data("\(Date().timeIntervalSince1970)\n".utf8)) }
        t.resume()
        heartbeat = t
    }

    private func path(_ tag: String, _ i: Int) -> String { "\(directory)/\(tag)-shard-\(i)-of-\(shard.count).json" }

    struct Envelope<T: Codable>: Codable { var parameters: [String: String]; var shard: Int; var count: Int; var payload: T }

    /// This shard's published payload for `tag`, when an earlier attempt of this generation finished it.
    public func mine<T: Codable>(_ tag: String, as: T.Type) throws -> T? {
        try read(tag, shard.index, as: T.self)
    }

    public func publish<T: Codable>(_ tag: String, _ payload: T) throws {
        try DurableFile.write(path(tag, shard.index), json: Envelope(parameters: parameters, shard: shard.index, count: shard.count, payload: payload))
    }

    private func read<T: Codable>(_ tag: String, _ i: Int, as: T.Type) throws -> T? {
        let p = path(tag, i)
        guard let e = try DurableFile.read(p, as: Envelope<T>.self) else { return nil }
        guard e.parameters == parameters, e.shard == i, e.count == shard.count else {
            throw RunError.shards("\(p) was written by another command (parameters \(e.parameters), shard \(e.shard)/\(e.count)); "
                                  + "start every shard with the same command, or --restart")
        }
        return e.payload
    }

    /// Every shard's payload for `tag` that is published, in shard order, and the shards that have not published it.
    private func published<T: Codable>(_ tag: String, as: T.Type) throws -> (parts: [T], missing: [Int]) {
        var out: [T] = [], missing: [Int] = []
        for i in 0..<shard.count {
            if let p = try read(tag, i, as: T.self) { out.append(p) } else { missing.append(i) }
        }
        return (out, missing)
    }

    /// How many shards have published `tag` (whatever their parameters: a foreign file is an error on reading).
    public func publishedCount(_ tag: String) -> Int {
        (0..<shard.count).filter { FileManager.default.fileExists(atPath: path(tag, $0)) }.count
    }

    /// Every shard's payload for `tag`, in shard order, without waiting: a shard that has not published it is an
    /// error naming it (a reduce merges only complete passes).
    public func collect<T: Codable>(_ tag: String, as: T.Type) throws -> [T] {
        let (parts, missing) = try published(tag, as: T.self)
        guard missing.isEmpty else {
            let names = missing.map { "\($0)/\(shard.count)" }.joined(separator: ", ")
            throw RunError.shards("cannot merge '\(tag)': shard\(missing.count > 1 ? "s" : "") \(names) of \(shard.count) did not publish it "
                + "(\(path(tag, missing[0])) is missing). Run \(missing.count > 1 ? "those map tasks" : "that map task") first ("
                + missing.prefix(3).map { "\(command) --pass map --shard \($0)/\(shard.count)" }.joined(separator: "; ")
                + (missing.count > 3 ? "; … each missing shard alike" : "") + "; or resubmit the plan), then this reduce again")
        }
        return parts
    }

    /// Every shard's payload for `tag`, in shard order; waits until all are published (see the type's comment).
    public func gather<T: Codable>(_ tag: String, as: T.Type, waiting: (String) -> Void = { _ in }) async throws -> [T] {
        let start = Date()
        var told = ""
        while true {
            let (out, missing) = try published(tag, as: T.self)
            if missing.isEmpty { return out }
            let now = Date().timeIntervalSince1970
            for i in missing {
                if let s = try? String(contentsOfFile: heartbeatPath(i), encoding: .utf8),
                   let t = Double(s.trimmingCharacters(in: .whitespacesAndNewlines)), now - t > deadAfter {
                    throw RunError.shards("shard \(i)/\(shard.count) stopped: its last sign of life was \(Int(now - t)) s ago and it has not published '\(tag)'. "
                                          + "Start it again (\(command) --shard \(i)/\(shard.count)); it resumes from what it published, and so does this one")
                }
            }
            let names = missing.map { "\($0)/\(shard.count)" }.joined(separator: ", ")
            let message = "waiting for shard\(missing.count > 1 ? "s" : "") \(names) to publish '\(tag)'"
            if message != told { waiting(message); told = message }
            if Date().timeIntervalSince(start) > timeout {
                let never = missing.filter { !FileManager.default.fileExists(atPath: heartbeatPath($0)) }
                throw RunError.shards("gave up after \(Int(timeout)) s (--wait-timeout) \(message)"
                    + (never.isEmpty ? "" : "; shard\(never.count > 1 ? "s" : "") \(never.map { "\($0)/\(shard.count)" }.joined(separator: ", ")) never started")
                    + ". Start every shard with the same command (\(command) --shard I/\(shard.count)); finished passes are kept")
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    /// Where shard i's sample for `tag` lives.
    func sampleFile(_ tag: String, _ i: Int) -> String { "\(directory)/\(tag)-shard-\(i)-of-\(shard.count).f64" }

    struct SampleInfo: Codable { var seen: Int; var rows: Int; var bytes: Int }

    /// Publishes this shard's sample (a uniform reservoir of its `seen` rows of `d` doubles, capacity `size`, in random
    /// order so any prefix is uniform), unless an earlier attempt did: the sample file first, then its description,
    /// both atomically. Of the M shards that own any of the step's `blocks` (M = min(N, blocks)), each writes at most
    /// 4·size/M rows — a merge takes size·seen/total from each, so only a shard with over 4× the average rows has less
    /// than its share (the merged sample then shrinks, see `sample`) — not the whole reservoir: with hundreds of map
    /// tasks their reservoirs would be tens of gigabytes.
    public func publishSample(_ sample: [Double], seen: Int, d: Int, size: Int, blocks: Int, tag: String) throws {
        if try mine(tag, as: SampleInfo.self) != nil && FileManager.default.fileExists(atPath: sampleFile(tag, shard.index)) { return }
        let held = sample.count / max(1, d), owners = max(1, min(shard.count, blocks))
        let rows = owners == 1 ? held : min(held, (4 * size + owners - 1) / owners)
        try DurableFile.write(sampleFile(tag, shard.index), sample.prefix(rows * d).withUnsafeBytes { Array($0) })
        try publish(tag, SampleInfo(seen: seen, rows: rows, bytes: rows * d * 8))
    }

    /// The shared sample: from each shard's published sample, in shard order, a number of rows proportional to its
    /// row count (any prefix of a published reservoir is uniform), so every process that reads it gets the same rows. `wait`:
    /// for shards not yet published (else they are an error). A file of another size than described is an error.
    public func sample(_ tag: String, d: Int, size: Int, wait: Bool, waiting: (String) -> Void) async throws -> (rows: [Double], seen: Int) {
        let parts = wait ? try await gather(tag, as: SampleInfo.self, waiting: waiting) : try collect(tag, as: SampleInfo.self)
        let total = parts.reduce(0) { $0 + $1.seen }
        // Each shard's share, size·seen/total rows; if a shard published fewer (it held over 4× the average rows),
        // every share shrinks by the same factor, so the sample stays uniform over all rows, only smaller.
        let shares = parts.map { min($0.seen, size * $0.seen / max(1, total)) }
        let scale = zip(parts, shares).reduce(1.0) { $1.1 > $1.0.rows ? min($0, Double($1.0.rows) / Double($1.1)) : $0 }
        var out = [Double]()
        for (i, part) in parts.enumerated() {
            let take = min(part.rows, Int(Double(shares[i]) * scale))
            guard take > 0 else { continue }
            let f = sampleFile(tag, i)
            // Only the prefix taken is read: with hundreds of map tasks, their whole reservoirs are gigabytes.
            let bytes = (try? FileManager.default.attributesOfItem(atPath: f))?[.size] as? Int
            guard bytes == part.bytes, part.bytes >= take * d * 8, let h = FileHandle(forReadingAtPath: f),
                  let data = try? h.read(upToCount: take * d * 8), data.count == take * d * 8 else {
                throw RunError.shards("\(f) is missing or has another size than shard \(i) published (\(part.bytes) bytes); start the step again with --restart")
            }
            try? h.close()
            out += data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
        return (out, total)
    }
}
