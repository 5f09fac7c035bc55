import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

final class TiffTests: XCTestCase {
    func testImportTifffileStacksAndExportBack() async throws {
        let dir = PythonReference.tempDir("tiff")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PythonReference.run("tools/interop/tiff_cases.py", ["write", dir])
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.bin")))
        let store = FileChunkStore(root: dir + "/out.zarr")
        // Chunks that do not divide the shape and span pages of both files.
        let a = try await TiffTransfer.importStack(files: [dir + "/stack_a.tif", dir + "/stack_b.tif"], into: store, path: "raw",
                                                   chunks: [3, 16, 32], codec: try BloscCodec(cname: "zstd"))
        XCTAssertEqual(a.shape, [4, 45, 61])
        XCTAssertEqual(a.dtype, .uint16)
        let full = try await a.read(a.fullBox)
        XCTAssertEqual(full, expected)

        let box = Box([1..<4, 5..<40, 3..<60])
        try await TiffTransfer.exportStack(a, box: box, to: dir + "/export.tif")
        try Data(cut(expected, shape: a.shape, box: box, elementSize: 2)).write(to: URL(fileURLWithPath: dir + "/export.bin"))
        try PythonReference.run("tools/interop/tiff_cases.py", ["check", dir + "/export.tif", dir + "/export.bin", "<u2", "3,35,57"])
    }

    func testMismatchedPagesAreRefused() async throws {
        let dir = PythonReference.tempDir("tiff-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TiffWriter(path: dir + "/a.tif", width: 8, height: 4, pages: 1, dtype: .uint8).writeRows([UInt8](repeating: 1, count: 32))
        try TiffWriter(path: dir + "/b.tif", width: 9, height: 4, pages: 1, dtype: .uint8).writeRows([UInt8](repeating: 1, count: 36))

        do {
            _ = try await TiffTransfer.importStack(files: [dir + "/a.tif", dir + "/b.tif"], into: FileChunkStore(root: dir + "/o.zarr"),
                                                   path: "raw", chunks: [1, 4, 4], codec: nil)
            XCTFail("expected an error")
        } catch { XCTAssertTrue("\(error)".contains("b.tif"), "\(error)") }
        do {
            try Data("not a tiff".utf8).write(to: URL(fileURLWithPath: dir + "/c.tif"))
            _ = try TiffReader(path: dir + "/c.tif")
            XCTFail("expected an error")
        } catch { XCTAssertTrue("\(error)".contains("c.tif"), "\(error)") }
    }
}
