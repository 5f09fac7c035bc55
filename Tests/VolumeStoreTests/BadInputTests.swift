import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Bad input gets a clear error naming the array and chunk key, and nothing is filled in silently.
final class BadInputTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = PythonReference.tempDir("bad") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func makeArray(codec: (any Codec)? = try! BloscCodec()) async throws -> ZarrArray {
        let store = FileChunkStore(root: dir + "/a")
        let md = ArrayMetadata(shape: [2, 8, 8], chunks: [1, 8, 8], dtype: .uint16, codec: codec)
        let a = try await ZarrArray.create(store: store, path: "", metadata: md)
        try await a.write(a.fullBox, [UInt8](repeating: 3, count: 2 * 8 * 8 * 2))
        return a
    }

    private func expectError(_ body: () async throws -> Void, containing parts: [String], file: StaticString = #filePath, line: UInt = #line) async {
        do {
            try await body()
            XCTFail("expected an error", file: file, line: line)
        } catch {
            let s = "\(error)"
            for p in parts { XCTAssertTrue(s.contains(p), "error '\(s)' should mention '\(p)'", file: file, line: line) }
        }
    }

    func testTruncatedChunk() async throws {
        let a = try await makeArray()
        let path = dir + "/a/1.0.0"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 5).write(to: URL(fileURLWithPath: path))
        await expectError({ _ = try await a.read(a.fullBox) }, containing: ["1.0.0", dir + "/a", "truncated"])
    }

    func testGarbageChunk() async throws {
        let a = try await makeArray()
        try Data((0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: dir + "/a/0.0.0"))
        await expectError({ _ = try await a.read(a.fullBox) }, containing: ["0.0.0", "corrupt"])
    }

    func testBloscChunkOfWrongDecodedSize() async throws {
        let a = try await makeArray()
        let other = try BloscCodec().encode([UInt8](repeating: 1, count: 100), elementSize: 2)
        try Data(other).write(to: URL(fileURLWithPath: dir + "/a/0.0.0"))
        await expectError({ _ = try await a.read(a.fullBox) }, containing: ["0.0.0", "100", "128"])
    }

    func testUncompressedChunkOfWrongSize() async throws {
        let a = try await makeArray(codec: nil)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/a/1.0.0"))
        await expectError({ _ = try await a.read(a.fullBox) }, containing: ["1.0.0", "3 bytes", "expected 128"])
    }

    func testMalformedMetadata() async throws {
        try FileManager.default.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        try Data("{\"zarr_format\": 2, \"shape\": [4".utf8).write(to: URL(fileURLWithPath: dir + "/m/.zarray"))
        await expectError({ _ = try await VolumeSource.open(dir + "/m") }, containing: [".zarray", "malformed"])
        try Data(#"{"zarr_format": 2, "shape": [4, 4], "chunks": [2], "dtype": "<u2", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/m/.zarray"))
        await expectError({ _ = try await VolumeSource.open(dir + "/m") }, containing: ["rank"])
    }

    func testUnsupportedCodecAndDtype() async throws {
        try FileManager.default.createDirectory(atPath: dir + "/u", withIntermediateDirectories: true)
        try Data(#"{"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "<u2", "compressor": {"id": "bz2", "level": 1}, "fill_value": 0, "order": "C", "filters": null}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/u/.zarray"))
        await expectError({ _ = try await VolumeSource.open(dir + "/u") }, containing: ["bz2", "not supported"])
        try Data(#"{"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "<c8", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/u/.zarray"))
        await expectError({ _ = try await VolumeSource.open(dir + "/u") }, containing: ["<c8", "not supported"])
    }

    func testRegionOutOfBounds() async throws {
        let a = try await makeArray()
        await expectError({ _ = try await a.read(Box([0..<2, 4..<9, 0..<8])) }, containing: ["4:9", "[2, 8, 8]"])
        await expectError({ try await a.write(Box([0..<1, 0..<1, 0..<1]), [1]) }, containing: ["expected 2 bytes"])
    }

    func testMissingArray() async throws {
        await expectError({ _ = try await VolumeSource.open(dir + "/nothing") }, containing: ["nothing", "does not exist"])
    }

    func testBloscHeaderChecks() throws {
        let enc = try BloscCodec(cname: "zstd").encode([UInt8](repeating: 7, count: 1000), elementSize: 1)
        XCTAssertEqual(try BloscCodec.decodeFrame(enc, expectedSize: 1000), [UInt8](repeating: 7, count: 1000))
        XCTAssertThrowsError(try BloscCodec.decodeFrame(Array(enc.prefix(10)), expectedSize: 1000))
        XCTAssertThrowsError(try BloscCodec.decodeFrame(enc + [0], expectedSize: 1000))
        XCTAssertThrowsError(try BloscCodec.decodeFrame(enc, expectedSize: 999))
        XCTAssertThrowsError(try BloscCodec(cname: "snappyish"))
    }

    func testAtomicWriteLeavesNoTempFiles() async throws {
        let a = try await makeArray()
        try await a.write(a.fullBox, [UInt8](repeating: 9, count: 256))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/a")
        XCTAssertFalse(files.contains { $0.hasPrefix(".tmp") }, "\(files)")
        XCTAssertEqual(Set(files), [".zarray", "0.0.0", "1.0.0"])
    }
}
