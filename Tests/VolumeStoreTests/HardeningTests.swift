import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Broken or hostile inputs: clear errors, no crash, no escape from the store, no credential in a message, and
/// outputs that are all or nothing.
final class HardeningTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = PythonReference.tempDir("harden") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ rel: String, _ text: String) throws {
        let p = dir + "/" + rel
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
    }

    func expectError(_ body: () async throws -> Void, containing parts: [String], file: StaticString = #filePath, line: UInt = #line) async {
        do { try await body(); XCTFail("expected an error", file: file, line: line) }
        catch { for p in parts { XCTAssertTrue("\(error)".contains(p), "'\(p)' not in: \(error)", file: file, line: line) } }
    }

    /// Shapes and chunks whose sizes overflow, or would allocate absurd amounts, are refused before any allocation.
    func testAbsurdSizesAreRefusedNotCrashes() async throws {
        try write("big/.zarray", #"{"zarr_format": 2, "shape": [4611686018427387904, 4611686018427387904, 8], "chunks": [1, 1, 8], "dtype": "<u2", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#)
        await expectError({ _ = try await VolumeSource.open(self.dir + "/big") }, containing: ["overflows"])
        try write("chunk/.zarray", #"{"zarr_format": 2, "shape": [1000000000000000000], "chunks": [1000000000000000000], "dtype": "|u1", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#)
        await expectError({ _ = try await VolumeSource.open(self.dir + "/chunk") }, containing: ["per chunk", "2 GiB"])
    }

    /// OME-Zarr dataset paths cannot lead outside the image, however spelled.
    func testMetadataPathsStayInsideTheStore() async throws {
        try write("secret/arr/.zarray", #"{"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "|u1", "compressor": null, "fill_value": 7, "order": "C", "filters": null}"#)
        for bad in ["../secret/arr", "/etc", "a//b", "..%2fsecret", "a\\\\b", "./0"] {
            try write("img.zarr/.zattrs", #"{"multiscales": [{"version": "0.4", "datasets": [{"path": "\#(bad)"}], "axes": []}]}"#)
            try write("img.zarr/.zgroup", #"{"zarr_format": 2}"#)
            await expectError({ _ = try await VolumeSource.open(self.dir + "/img.zarr") }, containing: ["does not stay inside the store"])
        }
    }

    /// Malformed URLs and refused schemes are not retried; credentials never appear in messages.
    func testHTTPPolicy() async throws {
        let stats = TransferStats()
        var f = RemoteFetcher(client: HTTPClient(), stats: stats)
        f.baseDelay = 0.01
        await expectError({ _ = try await f.get(HTTPRequest(url: "http://127.0.0.1:99999/x"), missingAllowed: false) }, containing: ["Not retried"])
        XCTAssertEqual(stats.requests, 1, "a malformed URL was retried")
        await expectError({ _ = try await f.get(HTTPRequest(url: "gopher://127.0.0.1/x"), missingAllowed: false) }, containing: ["Not retried"])
        XCTAssertEqual(stats.requests, 2)
        f.maxAttempts = 2
        do { _ = try await f.get(HTTPRequest(url: "http://alice:s3cretpw@127.0.0.1:1/vol.zarr/raw/0.0"), missingAllowed: false); XCTFail() }
        catch {
            XCTAssertFalse("\(error)".contains("s3cretpw"), "\(error)")
            XCTAssertTrue("\(error)".contains("://***@127.0.0.1:1/vol.zarr"), "\(error)")
        }
        let store = HTTPChunkStore(base: "https://bob:hunter2@example.invalid/v.zarr")
        XCTAssertFalse(store.location.contains("hunter2"))
    }

    /// Outputs are all or nothing, at their path as given: export over a good TIFF that fails midway keeps the good
    /// one; import refuses bad options before writing anything, refuses a bare name, never replaces an array
    /// without --overwrite, and a failed import leaves nothing behind.
    func testOutputsAreAllOrNothing() async throws {
        // A (z, y, x) array whose second slice has a corrupt chunk.
        let store = FileChunkStore(root: dir + "/v.zarr/raw")
        let a = try await ZarrArray.create(store: store, path: "", metadata: ArrayMetadata(shape: [2, 8, 8], chunks: [1, 8, 8], dtype: .uint8, codec: try BloscCodec()))
        try await a.write(a.fullBox, (0..<128).map { UInt8($0) })
        try await BrainmapCLI.run(["export-tiff", dir + "/v.zarr/raw", "--out", dir + "/good.tif"], logDir: dir)
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/good.tif"))
        try store.putSync("1.0.0", [1, 2, 3])
        let r = try BrainmapCLI.run(["export-tiff", dir + "/v.zarr/raw", "--out", dir + "/good.tif"], logDir: dir, tag: "bad-export")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("1.0.0"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/good.tif")), good, "a failed export replaced the good TIFF")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp") }, [], "temporary files left")

        // import-tiff: rejected options create nothing; a bare name is refused (never written at '/').
        let work = dir + "/cwd"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let bad = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", "--out", work + "/n.zarr/raw", "--chunks", "0,16,16"], logDir: dir, tag: "chunks0")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/n.zarr"), "a rejected import created its group")
        let bare = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", "--out", "g4-\(getpid()).zarr"], logDir: dir, tag: "bare")
        XCTAssertNotEqual(bare.status, 0)
        XCTAssertTrue(bare.stderr.contains("OUT.zarr/NAME"), bare.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/g4-\(getpid()).zarr"))

        // An existing array is not replaced without --overwrite; with it, it is, atomically.
        let ok = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", "--out", work + "/n.zarr/raw"], logDir: dir, tag: "import")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let again = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", "--out", work + "/n.zarr/raw", "--codec", "zstd"], logDir: dir, tag: "again")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
        let over = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", "--out", work + "/n.zarr/raw", "--codec", "zstd", "--overwrite"], logDir: dir, tag: "over")
        XCTAssertEqual(over.status, 0, over.stderr)
        let back = try await VolumeSource.open(work + "/n.zarr/raw")
        XCTAssertTrue(back.metadata.codec is ZstdCodec)
        let first = try await back.read(Box([0..<1, 0..<8, 0..<8]))
        XCTAssertEqual(first, (0..<64).map { UInt8($0) })
        // A failed import (a missing TIFF) leaves the previous array as it was, and no temporary array.
        let failed = try BrainmapCLI.run(["import-tiff", dir + "/good.tif", dir + "/missing.tif", "--out", work + "/n.zarr/raw", "--overwrite"], logDir: dir, tag: "failed")
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work + "/n.zarr").sorted(), [".zgroup", "raw"])

        // phantom: an absurd shape is refused at once, with the size it would need.
        let ph = try BrainmapCLI.run(["phantom", work + "/huge.zarr", "--shape", "1000000,1000000,1000000"], logDir: dir, tag: "phantom")
        XCTAssertNotEqual(ph.status, 0)
        XCTAssertTrue(ph.stderr.contains("chunks") || ph.stderr.contains("free"), ph.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/huge.zarr"))
    }

    /// Every input the fuzzers ever crashed on (kept in Fixtures/fuzz) is now a clean error or a clean decode.
    func testFuzzRegressions() throws {
        let root = PythonReference.packageRoot.path + "/Fixtures/fuzz/codecs"
        let files = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix("regression-") }
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + f)))
            let codecs: [any Codec] = [try ZstdCodec(), try DeflateCodec(.gzip), try DeflateCodec(.zlib), LZ4Codec(), CRC32CCodec()]
            for c in codecs { _ = try? c.decode(b, expectedSize: nil); _ = try? c.decode(b, expectedSize: 4096) }
        }
        // BossDB metadata with a negative level once divided by zero (1 << -2 is 0).
        let bossRoot = PythonReference.packageRoot.path + "/Fixtures/fuzz/bossdb/regression-negative-res.json"
        let o = try jsonObject([UInt8](try Data(contentsOf: URL(fileURLWithPath: bossRoot))), path: "r")
        XCTAssertThrowsError(try BossDBStore.layout(experiment: o["experiment"] as! [String: Any], frame: o["frame"] as! [String: Any],
                                                    channel: o["channel"] as! [String: Any], res: -2, source: "bossdb://r", frameURL: "r"))
        // The first find was a zstd frame declaring 4.2 GB (now streamed, never preallocated); lz4 has the same
        // trap: a header claiming ~4 GB from a few bytes is refused before any allocation.
        XCTAssertThrowsError(try LZ4Codec().decode([0xff, 0xff, 0xff, 0xf0, 1, 2, 3], expectedSize: nil)) { e in
            XCTAssertTrue("\(e)".contains("corrupt"), "\(e)")
        }
    }

    /// Messages a user can act on.
    func testMessagesSayWhatIsWrong() async throws {
        for name in ["raw", "labels"] {
            _ = try await ZarrArray.create(store: FileChunkStore(root: dir + "/g.zarr/" + name), path: "",
                                           metadata: ArrayMetadata(shape: [2], chunks: [2], dtype: .uint8))
        }
        try write("g.zarr/.zgroup", #"{"zarr_format": 2}"#)
        await expectError({ _ = try await VolumeSource.open(self.dir + "/g.zarr") },
                          containing: ["a Zarr group, not an array", "g.zarr/labels", "g.zarr/raw"])
        try write("plain.bin", "not a directory")
        await expectError({ _ = try await VolumeSource.open(self.dir + "/plain.bin") }, containing: ["is a file, not a Zarr array"])
        try write("html/.zarray", "<!DOCTYPE html><html><body>Sign in</body></html>")
        await expectError({ _ = try await VolumeSource.open(self.dir + "/html") }, containing: ["HTML page", "check the URL"])
        XCTAssertThrowsError(try TiffWriter(path: dir + "/no/such/dir/x.tif", width: 2, height: 2, pages: 1, dtype: .uint8)) { e in
            XCTAssertTrue("\(e)".contains("does not exist"), "\(e)")
        }
        XCTAssertThrowsError(try TiffWriter(path: dir + "/g.zarr", width: 2, height: 2, pages: 1, dtype: .uint8)) { e in
            XCTAssertTrue("\(e)".contains("is a directory"), "\(e)")
        }
    }

    /// A TIFF cut short is an error, never a stack with pages missing or zero-filled.
    func testTruncatedTIFFIsAnError() async throws {
        let w = try TiffWriter(path: dir + "/s.tif", width: 64, height: 64, pages: 4, dtype: .uint8)
        for p in 0..<4 { try w.writeRows((0..<4096).map { UInt8(($0 + p) % 251) }) }
        try w.close()
        let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/s.tif"))
        XCTAssertEqual(try TiffReader(path: dir + "/s.tif").pages.count, 4)
        for keep in [full.count * 2 / 3, full.count - 20, full.count / 2] {
            try full.prefix(keep).write(to: URL(fileURLWithPath: dir + "/cut.tif"))
            do {
                _ = try await TiffTransfer.importStack(files: [dir + "/cut.tif"], into: FileChunkStore(root: dir + "/o\(keep).zarr"), path: "raw",
                                                       chunks: [1, 64, 64], codec: nil)
                XCTFail("a TIFF cut to \(keep) of \(full.count) bytes imported")
            } catch { XCTAssertTrue("\(error)".contains("cut.tif"), "\(error)") }
        }
    }

    /// Deeply nested JSON and shard indexes pointing outside their shard are errors, not crashes or bad reads.
    func testDeepJSONAndOutOfShardIndexes() async throws {
        try write("deep/.zarray", String(repeating: "[", count: 100_000))
        await expectError({ _ = try await VolumeSource.open(self.dir + "/deep") }, containing: ["nested deeper"])

        let spec = ShardingSpec(shardShape: [1, 4, 4])
        let md = ArrayMetadata.v3(shape: [1, 4, 4], chunks: [1, 2, 2], dtype: .uint8, sharding: spec)
        let store = FileChunkStore(root: dir + "/sh")
        let a = try await ZarrArray.create(store: store, path: "", metadata: md)
        try await a.write(a.fullBox, [UInt8](repeating: 1, count: 16))
        // Rewrite entry 0 to point far past the end, with a valid checksum.
        var idx = [UInt8](); func u64(_ v: UInt64) { for k in 0..<8 { idx.append(UInt8((v >> (8 * UInt64(k))) & 0xff)) } }
        u64(1 << 40); u64(4); for i in 1..<4 { u64(UInt64(4 * i)); u64(4) }
        let crc = CRC32C.checksum(idx[...]); for k in 0..<4 { idx.append(UInt8((crc >> (8 * UInt32(k))) & 0xff)) }
        try store.putSync("c/0/0/0", [UInt8](repeating: 1, count: 16) + idx)
        let fresh = try await ZarrArray.open(store: store, path: "")
        await expectError({ _ = try await fresh.read(fresh.fullBox) }, containing: ["points outside the shard", "c/0/0/0"])
    }

    /// Issue 17, case 7: blosc after another bytes→bytes codec gets no expected size; a header claiming more than the chunk's encoding
    /// can hold is refused before it is allocated (it trusted up to 4 GiB).
    func testBloscInsideAChainIsCappedByTheChunk() throws {
        let pipeline = CodecPipeline(transpose: nil, dtype: .uint8, codecs: [try ZstdCodec(level: 1), try BloscCodec()])
        let chunk = (0..<4096).map { UInt8($0 % 7) }
        XCTAssertEqual(try pipeline.decode(try pipeline.encode(chunk, shape: [4096]), shape: [4096]), chunk)
        // A memcpy'd blosc frame (flags 0x02) of 32 bytes whose header claims 3.75 GiB.
        var frame: [UInt8] = [2, 1, 0x02, 1]
        for v in [0xF000_0000, 32, 32] as [UInt32] { frame += withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        frame += [UInt8](repeating: 9, count: 16)
        XCTAssertThrowsError(try pipeline.decode(frame, shape: [4096])) { e in
            XCTAssertTrue("\(e)".contains("4026531840") && "\(e)".contains("can hold"), "\(e)")
        }
        XCTAssertLessThan(CodecPipeline.encodedBound(4096, layers: 1), 80_000)
    }
}
