import ArgumentParser
import Foundation
import Phantom
import VolumeStore

struct PhantomCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "phantom",
        abstract: "Write a deterministic synthetic thalamocortical volume (raw, areas, layers) as a Zarr group.")

    @Argument(help: "Output group, e.g. phantom.zarr.") var out: String
    @Option(parsing: .unconditional, help: "Volume shape z,y,x (the real sample is 720,1420,5805).") var shape = "8,512,2048"
    @Option(parsing: .unconditional, help: "Random seed; the same seed gives the same bytes.") var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Chunk shape z,y,x.") var chunks = "1,512,512"
    @Option(help: "Codec for all three arrays (see import-tiff).") var codec = "blosc:lz4:5:shuffle"

    @Option(help: "Intensity domain shift: gamma=G,contrast=C,offset=O,noise=S (g' = 255·C·(g/255)^G + O + S·N(0,1)), or 'benchmark' (gamma=1.25,contrast=0.85,offset=20,noise=4.5).") var shift: String?
    @Option(parsing: .unconditional, help: "A disc Y,X,RADIUS (pixels, every slice) of a texture no class has (a 9-px egg-crate grating); adds an 'anomaly' mask array.") var anomaly: String?
    @Flag(help: "Replace an existing output.") var overwrite = false

    func run() async throws {
        let s = try parseInts(shape, count: 3, name: "--shape")
        let chunkShape = try parseInts(chunks, count: 3, name: "--chunks"), codec = try parseCodec(codec)
        let shiftSpec = try shift.map(PhantomShift.parse), anomalySpec = try anomaly.map { try PhantomAnomaly.parse($0, shape: s) }
        if FileManager.default.fileExists(atPath: out) && !overwrite { throw ValidationError("\(out) exists; add --overwrite to replace it") }
        if let a = anomalySpec, !PhantomVolume(shape: s, seed: seed).coversTissue(a) {
            throw ValidationError("--anomaly \(a): the disc lies in the background of every slice, so no tissue would get the anomalous texture "
                                  + "and its mask would be empty; move it onto tissue (a phantom's 'areas' array shows where tissue is)")
        }
        try checkRoom(shape: s, chunks: chunkShape)
        // Written under a temporary name beside the target and renamed into place when complete.
        let tmp = OutputPath.temporary(beside: out)
        let start = Date()
        let bar = LazyProgressBar("phantom")
        do {
            try await PhantomWriter.write(to: tmp, shape: s, seed: seed, chunks: chunkShape, codec: codec,
                                        shift: shiftSpec, anomaly: anomalySpec) { done, total in bar.update(done, of: total) }
            try OutputPath.replace(out, with: tmp)
        } catch {
            OutputPath.remove(tmp)
            throw error
        }
        bar.finish()
        let secs = Date().timeIntervalSince(start)
        let voxels = s.reduce(1, *)
        print(String(format: "wrote %@: shape %@, seed %llu, %@ of raw in %.1f s (%.1f Mvoxel/s)",
                     out, "\(s)", seed, formatBytes(voxels), secs, Double(voxels) / secs / 1e6))
        try await printPhantomSummary(out)
    }
}

extension PhantomCommand {
    /// Refuses up front a phantom the disk cannot hold (three u1 arrays plus the pyramid, before compression) or
    /// whose chunk count is absurd, with the size it would need.
    func checkRoom(shape s: [Int], chunks c: [Int]) throws {
        var voxels = 1.0
        for v in s { voxels *= Double(v) }
        let needed = voxels * 4 / 3   // raw and its pyramid (noise: incompressible); the label arrays compress to little
        let chunkCount = zip(s, c).reduce(1.0) { $0 * (Double($1.0) / Double($1.1)).rounded(.up) }
        guard chunkCount <= 1e8 else {
            throw ValidationError("--shape \(s) with --chunks \(c) makes \(String(format: "%.3g", chunkCount)) chunks; use larger chunks or a smaller shape")
        }
        let dir = ((out as NSString).deletingLastPathComponent as String).isEmpty ? "." : (out as NSString).deletingLastPathComponent
        var st = statvfs()
        if statvfs(dir, &st) == 0 {
            let free = Double(st.f_bavail) * Double(st.f_frsize)
            guard needed <= free else {
                throw ValidationError("--shape \(s) needs about \(formatBytes(Int(min(needed, 9e18)))) on disk; \(dir) has \(formatBytes(Int(free))) free")
            }
        }
    }
}

/// Prints the class and layer make-up of the middle slice of a phantom group.
func printPhantomSummary(_ group: String) async throws {
    let areas = try await VolumeSource.open(group + "/areas"), layers = try await VolumeSource.open(group + "/layers")
    let raw = try await VolumeSource.open(group + "/raw")
    let z = areas.shape[0] / 2
    let box = Box(start: [z, 0, 0], size: [1, areas.shape[1], areas.shape[2]])
    let a = try await areas.read(box), l = try await layers.read(box), r = try await raw.read(box)
    var count = [Int](repeating: 0, count: 7), sum = [Double](repeating: 0, count: 7)
    for i in a.indices { count[Int(a[i])] += 1; sum[Int(a[i])] += Double(r[i]) }
    print("slice z=\(z): area      fraction  mean gray")
    for k in 0..<7 {
        print("  " + PhantomArea.names[k].padding(toLength: 18, withPad: " ", startingAt: 0)
              + String(format: "%6.1f%%  %8.1f", 100 * Double(count[k]) / Double(a.count), count[k] > 0 ? sum[k] / Double(count[k]) : 0))
    }
    var lc = [Int](repeating: 0, count: 6)
    for v in l { lc[Int(v)] += 1 }
    print("  cortical layers: " + (1..<6).map { "\(PhantomLayer.names[$0]) \(String(format: "%.1f%%", 100 * Double(lc[$0]) / Double(l.count)))" }.joined(separator: ", "))
}
