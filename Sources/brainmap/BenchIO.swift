import ArgumentParser
import Foundation
import Phantom
import VolumeStore

struct BenchIO: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "io",
        abstract: "Blosc decode MB/s per core on phantom chunks (numcodecs as peer) and region-read MB/s from a local store (zarr-python as peer).")

    @Option(help: "Seconds per measurement.") var seconds = 2.0
    @Option(help: "Scratch directory (default: a temporary one).") var scratch: String?
    @Option(help: "Measure region reads from this source (e.g. http://127.0.0.1:8080/phantom.zarr/raw) instead.") var source: String?
    @Option(help: "With --source: the same store on local disk, measured next to it.") var local: String?

    func run() async throws {
        if let source { return try await remote(source) }
        let dir = scratch ?? FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-io-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/chunks", withIntermediateDirectories: true)
        defer { if scratch == nil { try? FileManager.default.removeItem(atPath: dir) } }

        // Real-looking input: 6 tissue chunks of 1×512×512 from a full-width phantom slice.
        let vol = PhantomVolume(shape: [4, 1420, 5805], seed: 1)
        let chunks = (0..<6).map { i in vol.render(Box([1..<2, 400..<912, (1000 + 700 * i)..<(1512 + 700 * i)])).raw }
        print("decode, one thread, 6 phantom chunks of 1×512×512 u1 (MB/s of decoded data):")
        print("  codec                          brainmap   numcodecs   ratio   compression")
        // (label, codec, numcodecs id: the file extension the peer decodes by)
        let codecs: [(String, any Codec, String)] = [
            ("blosc lz4:5:shuffle", try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1), "blosc"),
            ("blosc zstd:3:bitshuffle", try BloscCodec(cname: "zstd", clevel: 3, shuffle: 2), "blosc"),
            ("blosc zstd:5:shuffle", try BloscCodec(cname: "zstd", clevel: 5, shuffle: 1), "blosc"),
            ("zstd:0 (zarr-python default)", try ZstdCodec(level: 0), "zstd"),
            ("gzip:5", try DeflateCodec(.gzip, level: 5), "gzip"),
            ("zlib:5", try DeflateCodec(.zlib, level: 5), "zlib"),
            ("lz4 (numcodecs framing)", LZ4Codec(), "lz4"),
        ]
        var ours: [String: (Double, Double)] = [:]
        for (ci, (name, codec, ext)) in codecs.enumerated() {
            let enc = try chunks.map { try codec.encode($0, elementSize: 1) }
            for (i, e) in enc.enumerated() { try Data(e).write(to: URL(fileURLWithPath: "\(dir)/chunks/c\(ci)-\(i).\(ext)")) }
            let mbps = try throughput(seconds: seconds) {
                try enc.reduce(0) { $0 + (try codec.decode($1, expectedSize: 512 * 512)).count }
            } / 1e6
            let ratio = Double(chunks.count * 512 * 512) / Double(enc.reduce(0) { $0 + $1.count })
            ours[name] = (mbps, ratio)
        }
        var peer: [String: Double] = [:]
        if let out = runPeer("io_peer.py", ["decode", dir + "/chunks", String(seconds)]) {
            for line in out.split(separator: "\n") {
                let p = line.split(separator: " ")
                if p.count == 3, let i = Int(p[1].dropFirst()), let v = Double(p[2]) { peer[codecs[i].0] = v }
            }
        }
        for (name, _, _) in codecs {
            let (m, r) = ours[name]!
            let pv = peer[name]
            print("  " + name.padding(toLength: 29, withPad: " ", startingAt: 0)
                  + String(format: "%9.0f   ", m) + pad(pv.map { String(format: "%.0f", $0) } ?? "–", 9)
                  + "   " + pad(pv.map { String(format: "%.2f", m / $0) } ?? "–", 5) + String(format: "   %5.2f×", r))
        }

        // Region reads from a local phantom store: unaligned 4×700×900 boxes.
        let root = dir + "/phantom.zarr"
        try await PhantomWriter.write(to: root, shape: [16, 1420, 5805], seed: 1, chunks: [1, 512, 512])
        var uncached = SourceOptions(); uncached.cache = nil   // measure decoding, not the cache
        let a = try await VolumeSource.open(root + "/raw", options: uncached)
        let boxes = (0..<4).map { i in Box([(3 * i)..<(3 * i + 4), (100 + 90 * i)..<(800 + 90 * i), (300 + 1200 * i)..<(1200 + 1200 * i)]) }
        let start = Date()
        var bytes = 0
        repeat { for b in boxes { bytes += try await a.read(b).count } } while Date().timeIntervalSince(start) < seconds
        let regionMBps = Double(bytes) / Date().timeIntervalSince(start) / 1e6
        var peerRegion: Double?
        let spec = boxes.map { b in b.ranges.map { "\($0.lowerBound):\($0.upperBound)" }.joined(separator: ",") }.joined(separator: ";")
        if let out = runPeer("io_peer.py", ["region", root + "/raw/0", spec, String(seconds)]),
           let v = out.split(separator: " ").last.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) { peerRegion = v }
        print("region read, local store, uncached, unaligned 4×700×900 boxes of 1×512×512 lz4 chunks (MB/s):")
        print(String(format: "  brainmap %.0f   zarr-python %@   ratio %@", regionMBps, peerRegion.map { String(format: "%.0f", $0) } ?? "–",
                     peerRegion.map { String(format: "%.2f", regionMBps / $0) } ?? "–"))
    }
}

extension BenchIO {
    /// Region reads from a (remote) source, uncached, next to the same store on disk and next to zarr-python.
    func remote(_ source: String) async throws {
        var opts = SourceOptions(); opts.cache = nil
        let stats = TransferStats()
        opts.fetcher = RemoteFetcher(client: HTTPClient(), stats: stats)
        let a = try await VolumeSource.open(source, options: opts)
        let s = a.shape
        let size = [min(4, s[0]), min(700, s[1]), min(900, s[2])]
        let boxes = (0..<4).map { i in
            Box(start: (0..<3).map { d in (s[d] - size[d]) * i / 4 }, size: size)
        }
        func measure(_ arr: ZarrArray) async throws -> (Double, Double) {
            let start = Date(); var bytes = 0; let r0 = stats.requests
            repeat { for b in boxes { bytes += try await arr.read(b).count } } while Date().timeIntervalSince(start) < seconds
            let t = Date().timeIntervalSince(start)
            return (Double(bytes) / t / 1e6, Double(stats.requests - r0) / t)
        }
        let (mbps, rps) = try await measure(a)
        print("region read, \(boxes.count) unaligned \(size.map(String.init).joined(separator: "×")) boxes of \(a.dtype) (uncached):")
        print(String(format: "  brainmap %@: %.0f MB/s, %.0f requests/s (%d retries)", source, mbps, rps, stats.retries))
        if let local {
            let l = try await VolumeSource.open(local, options: opts)
            let (lm, _) = try await measure(l)
            print(String(format: "  brainmap local %@: %.0f MB/s  (remote/local %.2f)", local, lm, mbps / lm))
        }
        let spec = boxes.map { b in b.ranges.map { "\($0.lowerBound):\($0.upperBound)" }.joined(separator: ",") }.joined(separator: ";")
        if let out = runPeer("io_peer.py", ["region", source, spec, String(seconds)]),
           let v = out.split(separator: " ").last.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            print(String(format: "  zarr-python (fsspec HTTP): %.0f MB/s  (brainmap/zarr-python %.2f)", v, mbps / v))
        }
    }
}

/// Right-aligns a string in a column.
func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
