import ArgumentParser
import Foundation
import NeuralNet
import Phantom
import Pipeline
import VolumeStore

struct BenchCleanup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cleanup",
        abstract: "cleanup's px/s and peak RSS against the in-memory scipy + scikit-learn reference, interleaved rounds.",
        discussion: """
        The input is a run whose labels are a full-size phantom slice's areas (1420×5805) with misclassified blobs and
        speckle (~10% of the tissue), repeated over --slices slices. Each round runs `brainmap cleanup` (a child
        process, so its peak RSS is its own) on one slice and on the stack, then tools/bench/cleanup_peer.py
        (Algorithm 1 per slice in RAM: scipy.ndimage.label + KNeighborsClassifier) on the same slices.
        """)

    @Option(help: "Rounds (median reported).") var rounds = 3
    @Option(help: "Slices in the multi-slice stack.") var slices = 4
    @Option(help: "Scratch directory (default: a temporary one; the input is kept there between runs).") var scratch: String?

    func run() async throws {
        let dir = scratch ?? FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-cleanup").path
        let run = dir + "/noisy.zarr"
        let H = 1420, W = 5805
        if !FileManager.default.fileExists(atPath: run + "/labels/.zarray") || FileManager.default.fileExists(atPath: run + "/labels/\(slices - 1).0.0") == false {
            say("writing \(slices) noisy full-size label slices to \(run) …")
            try? FileManager.default.removeItem(atPath: run)
            let a = try await ZarrArray.create(store: FileChunkStore(root: run), path: "labels",
                                               metadata: ArrayMetadata(shape: [slices, H, W], chunks: [1, 352, 352], dtype: .uint8, codec: try BloscCodec()))
            let phantom = PhantomVolume(shape: [slices, H, W], seed: 1)
            for z in 0..<slices {
                var l = phantom.render(Box([z..<(z + 1), 0..<H, 0..<W])).areas
                var rng = SeededRandom(seed: UInt64(z + 1))
                // Blobs of a wrong class (radius 2–25 px) over ~8% of the tissue, then 2% speckle.
                let tissue = l.filter { $0 != 0 }.count
                var painted = 0
                while painted < tissue * 8 / 100 {
                    let cy = rng.next(below: H), cx = rng.next(below: W), r = 2 + rng.next(below: 24), c = UInt8(1 + rng.next(below: 6))
                    for y in max(0, cy - r)..<min(H, cy + r + 1) { for x in max(0, cx - r)..<min(W, cx + r + 1)
                        where (y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r && l[y * W + x] != 0 {
                        l[y * W + x] = c; painted += 1
                    } }
                }
                for i in l.indices where l[i] != 0 && rng.next(below: 50) == 0 { l[i] = UInt8(1 + rng.next(below: 6)) }
                try await a.write(Box([z..<(z + 1), 0..<H, 0..<W]), l)
            }
            FileManager.default.createFile(atPath: run + "/run.json", contents: Data(#"{"identity": {"stride": "1"}}"#.utf8))
        }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        say("Algorithm 1 (k = 3, 4-connectivity, CTX=1 HYP=1 STR=1 VP=1 WM=2 ZI=1) on 1 and \(slices) full-size slices, \(rounds) rounds interleaved")
        var rows: [String: [Double]] = [:]
        for r in 0..<rounds {
            var line = "round \(r + 1):"
            for n in [1, slices] {
                let out = try runChild(exe, ["cleanup", run, "--slices", "0:\(n)", "--restart", "--quiet"])
                guard let m = out.range(of: #"([0-9.]+) s, peak RSS ([0-9.]+) (MiB|GiB)"#, options: .regularExpression) else {
                    throw ValidationError("could not read brainmap cleanup's summary:\n\(out)")
                }
                let parts = out[m].split(separator: " ")
                let secs = Double(parts[0])!, rss = Double(parts[4])! * (parts[5] == "GiB" ? 1024 : 1)
                let pixels = Double(out.split(separator: "\n").first { $0.hasPrefix("pixels:") }?.split(separator: " ")[1] ?? "0") ?? 0
                rows["b\(n)s", default: []].append(secs); rows["b\(n)m", default: []].append(rss); rows["px\(n)", default: []].append(pixels)
                line += String(format: "  brainmap %d slice(s) %.2f s %.0f MiB", n, secs, rss)
                if let peer = runPeer("cleanup_peer.py", [run, "0", "\(n)"]) {
                    let f = peer.split(separator: " ").map(String.init)
                    if f.count >= 4, let s = Double(f[1]), let m = Double(f[3]) {
                        rows["p\(n)s", default: []].append(s); rows["p\(n)m", default: []].append(m)
                        line += String(format: ", peer %.2f s %.0f MiB;", s, m)
                    }
                }
            }
            say(line)
        }
        for n in [1, slices] {
            let px = median(rows["px\(n)"] ?? [0]), b = median(rows["b\(n)s"] ?? [0]), bm = median(rows["b\(n)m"] ?? [0])
            var s = String(format: "%d slice(s): brainmap %.0f px/s, peak RSS %.0f MiB", n, px / b, bm)
            if let ps = rows["p\(n)s"], let pm = rows["p\(n)m"] {
                s += String(format: "; scipy+sklearn %.0f px/s, %.0f MiB → %.1f× the speed at %.0f%% of the memory",
                            px / median(ps), median(pm), median(ps) / b, 100 * bm / median(pm))
            }
            say("median " + s)
        }
    }

    private func runChild(_ exe: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
