import ArgumentParser
import Foundation
import Phantom
import VolumeStore

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the method on a synthetic phantom (grows as the pipeline lands).")

    @Option(help: "Output directory.") var out = "demo-out"
    @Option(help: "Phantom shape z,y,x.") var shape = "4,710,2900"

    func run() async throws {
        let s = try parseInts(shape, count: 3, name: "--shape")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let group = out + "/phantom.zarr"
        print("1. phantom \(s) → \(group)")
        let start = Date()
        try await PhantomWriter.write(to: group, shape: s, seed: 1)
        print(String(format: "   %.1f s", Date().timeIntervalSince(start)))
        try await printPhantomSummary(group)
        let raw = try await VolumeSource.open(group + "/raw")
        let z = s[0] / 2
        try await TiffTransfer.exportStack(raw, box: Box([z..<(z + 1), 0..<s[1], 0..<s[2]]), to: out + "/slice.tif")
        print("2. middle slice exported to \(out)/slice.tif (open it in Fiji/napari; the labels are in \(group)/areas and /layers)")
    }
}
