import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

final class OMEZarrTests: XCTestCase {
    func pyramid(format: Int) async throws {
        let dir = PythonReference.tempDir("ome")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FileChunkStore(root: dir + "/img.ome.zarr")
        let shape = [2, 75, 101]
        let md = format == 3 ? ArrayMetadata.v3(shape: shape, chunks: [1, 32, 32], dtype: .uint16, codec: try BloscCodec())
                             : ArrayMetadata(shape: shape, chunks: [1, 32, 32], dtype: .uint16, codec: try BloscCodec())
        let a = try await ZarrArray.create(store: store, path: "0", metadata: md)
        var s: UInt64 = 5
        let data: [UInt8] = (0..<(shape.reduce(1, *))).flatMap { _ -> [UInt8] in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let v = UInt16(truncatingIfNeeded: s >> 50)
            return [UInt8(v & 0xff), UInt8(v >> 8)]
        }
        try await a.write(a.fullBox, data)
        try await OMEZarr.buildPyramid(store: store, path: "", levels: 3, axes: [("z", "space"), ("y", "space"), ("x", "space")],
                                       scale: [1.17, 1.17, 1.17])
        let out = try PythonReference.run("tools/interop/ome_check.py", [dir + "/img.ome.zarr", format == 3 ? "0.5" : "0.4"])
        XCTAssertTrue(out.contains("ok 4 levels"), out)
        // Reading picks a level: 0 by default.
        var opts = SourceOptions(); opts.cache = nil
        let l0 = try await VolumeSource.open(dir + "/img.ome.zarr", options: opts)
        XCTAssertEqual(l0.shape, shape)
        let l2 = try await VolumeSource.open(dir + "/img.ome.zarr?level=2", options: opts)
        XCTAssertEqual(l2.shape, [2, 19, 26])
        do { _ = try await VolumeSource.open(dir + "/img.ome.zarr?level=9", options: opts); XCTFail("expected an error") }
        catch { XCTAssertTrue("\(error)".contains("levels 0…3"), "\(error)") }
    }

    func testOMEZarr04PyramidOnZarrV2() async throws { try await pyramid(format: 2) }
    func testOMEZarr05PyramidOnZarrV3() async throws { try await pyramid(format: 3) }
}
