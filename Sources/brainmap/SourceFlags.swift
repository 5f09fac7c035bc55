import ArgumentParser
import VolumeStore

/// Flags every command that reads a source shares.
struct SourceFlags: ParsableArguments {
    @Option(help: "Header sent with HTTP requests, e.g. 'Authorization: Bearer TOKEN'.") var authHeader: String?
    @Option(help: "BossDB API host (default: $BOSSDB_HOST or api.bossdb.io; the token comes from $BOSSDB_TOKEN).") var bossdbHost: String?
    @Option(name: .customLong("cache-mib"), help: "Decoded-chunk cache size in MiB, shared by all reads of this process.") var cacheMiB = 512

    var options: SourceOptions {
        var o = SourceOptions(authHeader: authHeader)
        o.bossdbHost = bossdbHost
        o.cache = cacheMiB == 512 ? .shared : ChunkCache(capacity: cacheMiB << 20)
        return o
    }

    func open(_ source: String) async throws -> ZarrArray { try await VolumeSource.open(source, options: options) }

    /// A line about remote traffic, for sources that had any.
    func report() {
        let s = TransferStats.shared
        if s.requests > 0 { print("remote: \(s.summary)") }
    }
}
