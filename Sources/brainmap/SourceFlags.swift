import ArgumentParser
import VolumeStore

/// Flags every command that reads a source shares.
struct SourceFlags: ParsableArguments {
    @Option(help: "Header sent with HTTP requests, e.g. 'Authorization: Bearer TOKEN'.") var authHeader: String?
    @Option(help: "BossDB API host (default: $BOSSDB_HOST or api.bossdb.io; the token comes from $BOSSDB_TOKEN).") var bossdbHost: String?
    @Option(name: .customLong("cache-mib"), help: "Decoded-chunk cache size in MiB, shared by all reads of this process.") var cacheMiB = 512

    /// A new resource context (cache, HTTP pool, counters); make one per command and pass it to every open.
    func context(cacheBytes: Int? = nil) -> SourceOptions {
        var o = SourceOptions(authHeader: authHeader, cacheBytes: cacheBytes ?? cacheMiB << 20)
        o.bossdbHost = bossdbHost
        return o
    }
}

/// A line about remote traffic, for contexts that had any.
func reportRemote(_ context: SourceOptions) {
    let s = context.stats
    if s.requests > 0 { print("remote: \(s.summary)") }
}
