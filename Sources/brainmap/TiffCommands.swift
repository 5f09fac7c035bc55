import ArgumentParser
import Foundation
import VolumeStore

/// Parses "A:B" (either side optional) into a range inside 0..<limit.
func parseRange(_ s: String?, limit: Int, axis: String) throws -> Range<Int> {
    guard let s else { return 0..<limit }
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2 else { throw ValidationError("--\(axis) must look like A:B, got '\(s)'") }
    let a = parts[0].isEmpty ? 0 : Int(parts[0]), b = parts[1].isEmpty ? limit : Int(parts[1])
    guard let a, let b, a >= 0, b <= limit, a < b else {
        throw ValidationError("--\(axis) \(s) is not a non-empty range inside 0:\(limit)")
    }
    return a..<b
}

func parseInts(_ s: String, count: Int, name: String) throws -> [Int] {
    let v = s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard v.count == count, v.allSatisfy({ $0 > 0 }) else { throw ValidationError("\(name) must be \(count) positive integers separated by commas, got '\(s)'") }
    return v
}

/// Parses a codec spec: "none", "blosc[:CNAME[:CLEVEL[:SHUFFLE]]]" (shuffle, bitshuffle, noshuffle), "zstd[:LEVEL]",
/// "gzip[:LEVEL]", "zlib[:LEVEL]" or "lz4".
func parseCodec(_ s: String) throws -> (any Codec)? {
    if s == "none" || s == "raw" { return nil }
    let p = s.split(separator: ":").map(String.init)
    let usage = "--codec must be none, blosc[:CNAME[:CLEVEL[:SHUFFLE]]], zstd[:LEVEL], gzip[:LEVEL], zlib[:LEVEL] or lz4; got '\(s)'"
    func level(_ d: Int) throws -> Int {
        guard p.count <= 2 else { throw ValidationError(usage) }
        guard p.count == 2 else { return d }
        guard let l = Int(p[1]) else { throw ValidationError(usage) }
        return l
    }
    do {
        switch p.first {
        case "blosc":
            let shuffles = ["noshuffle": 0, "shuffle": 1, "bitshuffle": 2, "auto": -1]
            guard p.count < 4 || shuffles[p[3]] != nil else { throw ValidationError("shuffle must be one of \(shuffles.keys.sorted())") }
            return try BloscCodec(cname: p.count > 1 ? p[1] : "lz4", clevel: p.count > 2 ? Int(p[2]) ?? -1 : 5,
                                  shuffle: p.count > 3 ? shuffles[p[3]]! : 1)
        case "zstd": return try ZstdCodec(level: try level(0))
        case "gzip": return try DeflateCodec(.gzip, level: try level(5))
        case "zlib": return try DeflateCodec(.zlib, level: try level(5))
        case "lz4": return LZ4Codec()
        default: throw ValidationError(usage)
        }
    } catch let e as CodecError { throw ValidationError("\(e)") }
}

struct ImportTiff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import-tiff",
        abstract: "Import TIFF pages (one or many files) as a (z, y, x) Zarr v2 array, streamed band by band.")

    @Argument(help: "TIFF files, in z order; each may hold many pages.") var files: [String]
    @Option(help: "Output array, OUT.zarr/NAME.") var out: String
    @Option(parsing: .unconditional, help: "Chunk shape z,y,x.") var chunks = "1,512,512"
    @Option(help: "none | blosc[:lz4|lz4hc|zstd|zlib|blosclz[:CLEVEL[:shuffle|bitshuffle|noshuffle]]] | zstd[:LEVEL] | gzip[:LEVEL] | zlib[:LEVEL] | lz4. Default blosc lz4 with byte shuffle: the fastest to decode (what the pipeline reads most).") var codec = "blosc:lz4:5:shuffle"

    @Flag(help: "Replace an existing array of that name.") var overwrite = false

    func run() async throws {
        // Everything is checked before anything is written; the array is written under a temporary name and
        // renamed into place when complete, so a failure leaves the previous state as it was.
        let (group, name) = try outputArray(out)
        let chunkShape = try parseInts(chunks, count: 3, name: "--chunks"), codec = try parseCodec(codec)
        if FileManager.default.fileExists(atPath: group + "/" + name) && !overwrite {
            throw ValidationError("\(out) exists; add --overwrite to replace it")
        }
        let newGroup = !FileManager.default.fileExists(atPath: group)
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: true)
        let store = FileChunkStore(root: group)
        let tmp = (OutputPath.temporary(beside: group + "/" + name) as NSString).lastPathComponent
        let bar = LazyProgressBar("import")
        let a: ZarrArray
        do {
            a = try await TiffTransfer.importStack(files: files, into: store, path: tmp, chunks: chunkShape, codec: codec) { done, total in
                bar.update(done, of: total)
            }
            try await ZarrGroup.create(store: store)
            try OutputPath.replace(group + "/" + name, with: group + "/" + tmp)
        } catch {
            OutputPath.remove(newGroup ? group : group + "/" + tmp)
            throw error
        }
        bar.finish()
        print("wrote \(out): shape \(a.shape), dtype \(a.dtype), chunks \(a.metadata.chunks)")
    }
}

/// Splits an output array path OUT.zarr/NAME into the group directory and the array name, exactly as given
/// (relative paths stay relative to the working directory). The group must be a `.zarr` directory (or an existing
/// Zarr group): brainmap never writes group metadata into an arbitrary directory.
func outputArray(_ s: String) throws -> (group: String, name: String) {
    let (group, name) = VolumeSource.splitArrayPath(s)
    let isGroup = FileManager.default.fileExists(atPath: group + "/.zgroup") || FileManager.default.fileExists(atPath: group + "/zarr.json")
    guard !name.isEmpty, name != ".", name != "..", group.hasSuffix(".zarr") || isGroup else {
        throw ValidationError("--out \(s): name an array inside a Zarr group, OUT.zarr/NAME (e.g. \(s.hasSuffix(".zarr") ? s : s + ".zarr")/raw)")
    }
    return (group, name)
}

struct ExportTiff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export-tiff",
        abstract: "Export a region of a (z, y, x) array to a TIFF, one page per z.")

    @Argument(help: "A source array: vol.zarr/raw, https://…/vol.zarr/raw or bossdb://coll/exp/chan[?res=N].") var source: String
    @OptionGroup var sourceFlags: SourceFlags
    @Option(help: "Output TIFF file.") var out: String
    @Option(parsing: .unconditional, help: "z range A:B (default: all).") var z: String?
    @Option(parsing: .unconditional, help: "y range A:B (default: all).") var y: String?
    @Option(parsing: .unconditional, help: "x range A:B (default: all).") var x: String?

    func run() async throws {
        let context = sourceFlags.context()
        let a = try await VolumeSource.open(source, options: context)
        guard a.shape.count == 3 else { throw ValidationError("\(source) has \(a.shape.count) axes; export-tiff needs (z, y, x)") }
        guard a.shape.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(source) has shape \(a.shape), with a 0-length axis: there is nothing to export (a TIFF needs at least one 1×1 page)")
        }
        let box = Box([try parseRange(z, limit: a.shape[0], axis: "z"), try parseRange(y, limit: a.shape[1], axis: "y"),
                       try parseRange(x, limit: a.shape[2], axis: "x")])
        let bar = ProgressBar("export", total: box.size[0])
        try await TiffTransfer.exportStack(a, box: box, to: out) { done, _ in bar.update(done) }
        bar.finish()
        print("wrote \(out): \(box.size[0]) page(s) of \(box.size[2])×\(box.size[1]) \(a.dtype.native)")
        reportRemote(context)
    }
}
