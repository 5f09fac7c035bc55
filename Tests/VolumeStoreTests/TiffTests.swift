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

    /// Issue 17, case 7: import-tiff opens its files one at a time: 300 single-page files import with the open-file limit at 64.
    func testImportOpensFilesOneAtATime() async throws {
        let dir = PythonReference.tempDir("many-tiffs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [String] = []
        for i in 0..<300 {
            let f = dir + "/p\(i).tif"
            let w = try TiffWriter(path: f, width: 3, height: 2, pages: 1, dtype: .uint8)
            try w.writeRows((0..<6).map { UInt8(truncatingIfNeeded: i + $0) })
            try w.close()
            files.append(f)
        }
        var old = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &old)
        // The limit is relative to what this test process already holds open (earlier tests' pools and caches):
        // room for the import's pool of 16 and a few more, far below the 300 files.
        let openNow = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
        var low = old; low.rlim_cur = rlim_t(openNow + 32)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &low), 0)
        let a: ZarrArray
        do {
            a = try await TiffTransfer.importStack(files: files, into: FileChunkStore(root: dir + "/v.zarr"), path: "raw",
                                                   chunks: [16, 2, 3], codec: nil)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &old)
        } catch { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &old); throw error }
        XCTAssertEqual(a.shape, [300, 2, 3])
        let plane = try await a.read(Box([299..<300, 0..<2, 0..<3]))
        XCTAssertEqual(plane, (0..<6).map { UInt8(truncatingIfNeeded: 299 + $0) })
    }
}
