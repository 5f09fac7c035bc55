import ArgumentParser
import VolumeStore

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an array's shape, dtype, chunks, codec and attributes.")

    @Argument(help: "An array: vol.zarr/raw, https://host/vol.zarr/raw, or bossdb://collection/experiment/channel[?res=N].")
    var source: String
    @OptionGroup var sourceFlags: SourceFlags

    func run() async throws {
        let context = sourceFlags.context()
        let a = try await VolumeSource.open(source, options: context)
        let md = a.metadata
        print("source:      \(source)")
        print("shape:       \(md.shape)")
        print("dtype:       \(md.dtype) (\(md.dtype.v3Name))")
        print("chunks:      \(md.chunks)  grid \(md.grid)")
        print("format:      Zarr v\(md.zarrFormat)\(md.sharding.map { ", sharded \($0.shardShape) (index at \($0.indexLocation.rawValue))" } ?? "")")
        print("codecs:      " + md.pipeline.zarrV3Codecs().map(describeCodec).joined(separator: " → "))
        print("fill_value:  \(md.fillValue)")
        print("size:        \(formatBytes(md.shape.reduce(1, *) * md.dtype.size)) uncompressed")
        let attrs = try await a.attributes()
        if !attrs.isEmpty {
            print("attributes:  " + String(decoding: jsonBytes(attrs), as: UTF8.self).replacingOccurrences(of: "\n", with: "\n             "))
        }
        reportRemote(context)
    }
}

/// "zstd(level=0, checksum=false)" from a v3 codec entry.
func describeCodec(_ c: [String: Any]) -> String {
    let name = c["name"] as? String ?? "?"
    guard let conf = c["configuration"] as? [String: Any], !conf.isEmpty else { return name }
    return name + "(" + conf.keys.sorted().map { "\($0)=\(conf[$0]!)" }.joined(separator: ", ") + ")"
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[i])
}
