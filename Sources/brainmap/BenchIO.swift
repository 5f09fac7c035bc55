import ArgumentParser
import Foundation
import Phantom
import VolumeStore

struct BenchIO: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "io",
        abstract: "Blosc decode MB/s per core on phantom chunks (numcodecs as peer) and region-read MB/s from a local store (zarr-python as peer).")

    @Option(help: "Seconds per measurement.") var seconds = 2.0
    @Option(help: "Scratch directory (default: a temporary one).") var scratch: String?

    func run() async throws {
        let dir = scratch ?? FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-io-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/chunks", withIntermediateDirectories: true)
        defer { if scratch == nil { try? FileManager.default.removeItem(atPath: dir) } }

        // Real-looking input: 6 tissue chunks of 1×512×512 from a full-width phantom slice.
        let vol = PhantomVolume(shape: [4, 1420, 5805], seed: 1)
        let chunks = (0..<6).map { i in vol.render(Box([1..<2, 400..<912, (1000 + 700 * i)..<(1512 + 700 * i)])).raw }
        print("blosc decode, one thread, 6 phantom chunks of 1×512×512 u1 (MB/s of decoded data):")
        print("  codec                 brainmap   numcodecs   ratio   compression")
        let codecs: [(String, BloscCodec)] = [("lz4:5:shuffle", try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1)),
                                              ("zstd:3:bitshuffle", try BloscCodec(cname: "zstd", clevel: 3, shuffle: 2)),
                                              ("zstd:5:shuffle", try BloscCodec(cname: "zstd", clevel: 5, shuffle: 1))]
        var ours: [String: (Double, Double)] = [:]
        for (ci, (name, codec)) in codecs.enumerated() {
            let enc = try chunks.map { try codec.encode($0, elementSize: 1) }
            for (i, e) in enc.enumerated() { try Data(e).write(to: URL(fileURLWithPath: "\(dir)/chunks/c\(ci)-\(i).blosc")) }
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
        for (name, _) in codecs {
            let (m, r) = ours[name]!
            let pv = peer[name]
            print("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: "%9.0f   ", m) + pad(pv.map { String(format: "%.0f", $0) } ?? "–", 9)
                  + "   " + pad(pv.map { String(format: "%.2f", m / $0) } ?? "–", 5) + String(format: "   %5.2f×", r))
        }

        // Region reads from a local phantom store: unaligned 4×700×900 boxes.
        let root = dir + "/phantom.zarr"
        try await PhantomWriter.write(to: root, shape: [16, 1420, 5805], seed: 1, chunks: [1, 512, 512])
        let a = try await VolumeSource.open(root + "/raw")
        let boxes = (0..<4).map { i in Box([(3 * i)..<(3 * i + 4), (100 + 90 * i)..<(800 + 90 * i), (300 + 1200 * i)..<(1200 + 1200 * i)]) }
        let start = Date()
        var bytes = 0
        repeat { for b in boxes { bytes += try await a.read(b).count } } while Date().timeIntervalSince(start) < seconds
        let regionMBps = Double(bytes) / Date().timeIntervalSince(start) / 1e6
        var peerRegion: Double?
        let spec = boxes.map { b in b.ranges.map { "\($0.lowerBound):\($0.upperBound)" }.joined(separator: ",") }.joined(separator: ";")
        if let out = runPeer("io_peer.py", ["region", root + "/raw/0", spec, String(seconds)]),
           let v = out.split(separator: " ").last.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) { peerRegion = v }
        print("region read, local store, unaligned 4×700×900 boxes of 1×512×512 lz4 chunks (MB/s):")
        print(String(format: "  brainmap %.0f   zarr-python %@   ratio %@", regionMBps, peerRegion.map { String(format: "%.0f", $0) } ?? "–",
                     peerRegion.map { String(format: "%.2f", regionMBps / $0) } ?? "–"))
    }
}

/// Right-aligns a string in a column.
func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
