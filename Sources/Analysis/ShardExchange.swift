import Foundation
import Pipeline
import VolumeStore

/// How N processes (`--shard I/N`) share a pass: each accumulates the statistics of its blocks (block i belongs to
/// shard i mod N), publishes them as a file, waits for the other shards' files of the same pass, and merges all N in
/// shard order — so every process holds the same merged statistics and takes the same next step. Files live in
/// RUN/analysis/shards/ and carry the parameters' identity; one from other parameters is an error. The computation is
/// deterministic, so a file left by an earlier attempt with the same parameters holds the same numbers: a restarted
/// shard reuses its own finished passes (that is its resume) and never mixes results of different parameters.
struct ShardExchange {
    let directory: String
    let shard: Shard
    let identity: [String: String]

    init(run: RunArrays, shard: Shard, identity: [String: String]) throws {
        directory = run.analysisDirectory + "/shards"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.shard = shard; self.identity = identity
    }

    private func path(_ tag: String, _ i: Int) -> String { "\(directory)/\(tag)-shard-\(i)-of-\(shard.count).json" }

    private struct Envelope<T: Codable>: Codable { var identity: [String: String]; var payload: T }

    /// This shard's published payload for `tag`, when an earlier attempt with the same parameters finished it.
    func mine<T: Codable>(_ tag: String, as: T.Type) -> T? {
        guard let data = FileManager.default.contents(atPath: path(tag, shard.index)),
              let e = try? JSONDecoder().decode(Envelope<T>.self, from: data), e.identity == identity else { return nil }
        return e.payload
    }

    func publish<T: Codable>(_ tag: String, _ payload: T) throws {
        let p = path(tag, shard.index), tmp = OutputPath.temporary(beside: p)
        try JSONEncoder().encode(Envelope(identity: identity, payload: payload)).write(to: URL(fileURLWithPath: tmp))
        try OutputPath.replace(p, with: tmp)
    }

    /// Every shard's payload for `tag`, in shard order; waits (polling) until all are published.
    func gather<T: Codable>(_ tag: String, as: T.Type, waiting: () -> Void = {}) async throws -> [T] {
        var told = false
        while true {
            var out: [T] = []
            for i in 0..<shard.count {
                guard let data = FileManager.default.contents(atPath: path(tag, i)) else { break }
                let e: Envelope<T>
                do { e = try JSONDecoder().decode(Envelope<T>.self, from: data) }
                catch { throw AnalysisError.input("\(path(tag, i)) is not a shard file of this step (\(error)); remove RUN/analysis/shards or use --restart") }
                guard e.identity == identity else {
                    throw AnalysisError.input("\(path(tag, i)) was written with other parameters \(e.identity); start every shard with the same command, or --restart")
                }
                out.append(e.payload)
            }
            if out.count == shard.count { return out }
            if !told { waiting(); told = true }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    /// Where shard i's sample for `tag` lives.
    func sampleFile(_ tag: String, _ i: Int) -> String { "\(directory)/\(tag)-shard-\(i)-of-\(shard.count).f64" }

    /// Publishes this shard's sample (a uniform reservoir of its `seen` rows) and returns the shared sample: from each
    /// shard, in shard order, a number of rows proportional to its row count (any prefix of a reservoir is uniform).
    func shareSample(_ sample: [Double], seen: Int, d: Int, size: Int, tag: String, waiting: () -> Void) async throws -> [Double] {
        let file = { (i: Int) in sampleFile(tag, i) }
        if mine(tag, as: SampleInfo.self) == nil || !FileManager.default.fileExists(atPath: file(shard.index)) {
            try Data(sample.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: file(shard.index)))
            try publish(tag, SampleInfo(seen: seen, rows: sample.count / d))
        }
        let parts = try await gather(tag, as: SampleInfo.self, waiting: waiting)
        let total = parts.reduce(0) { $0 + $1.seen }
        var out = [Double]()
        for (i, part) in parts.enumerated() {
            let take = min(part.rows, size * part.seen / max(1, total))
            guard take > 0, let data = FileManager.default.contents(atPath: file(i)), data.count >= take * d * 8 else { continue }
            out += data.withUnsafeBytes { Array($0.bindMemory(to: Double.self).prefix(take * d)) }
        }
        return out
    }
}

/// A shard's row count and sample size (the sample itself is a file beside).
struct SampleInfo: Codable { var seen: Int; var rows: Int }
