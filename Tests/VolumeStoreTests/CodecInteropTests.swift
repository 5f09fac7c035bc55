import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// The codec pipeline against zarr-python 3 and numcodecs: what users write (zarr-python's defaults, every codec),
/// what we write, sharding's request counts, verbatim partial shard writes, and one writer per shard.
final class CodecInteropTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = PythonReference.tempDir("codecs") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testArraysZarrPython3WritesReadIdentically() async throws {
        try PythonReference.run("tools/interop/codec_cases.py", ["write", dir])
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as! [[String: Any]]
        XCTAssertEqual(manifest.count, 14)
        for case_ in manifest {
            let name = case_["name"] as! String
            let a = try await VolumeSource.open(dir + "/py/" + name)
            let want = try Data(contentsOf: URL(fileURLWithPath: dir + "/expected/\(name).bin"))
            let got = try await a.read(a.fullBox)
            XCTAssertEqual(got, [UInt8](want), name)
            let part = Box([1..<3, 7..<41, 5..<66])
            let p = try await a.read(part)
            XCTAssertEqual(p, cut([UInt8](want), shape: a.shape, box: part, elementSize: a.dtype.size), "\(name) region")
        }
    }

    func testArraysWeWriteReadIdenticallyInZarrPython() async throws {
        let cases: [(String, ArrayMetadata)] = try [
            ("v2-zstd", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: ZstdCodec(level: 3))),
            ("v2-gzip", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: DeflateCodec(.gzip, level: 5))),
            ("v2-zlib", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: DeflateCodec(.zlib, level: 2))),
            ("v2-lz4", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: LZ4Codec())),
            ("v2-zstd-F", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, order: .f, codec: ZstdCodec())),
            ("v3-zstd", .v3(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: ZstdCodec(level: 1))),
            ("v3-gzip", .v3(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: DeflateCodec(.gzip))),
            ("v3-zstd-crc32c", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16,
                                             codecs: [ZstdCodec(checksum: true), CRC32CCodec()], separator: "/", zarrFormat: 3)),
            ("v3-transpose", ArrayMetadata(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: DataType(kind: .uint, size: 2, bigEndian: true),
                                           codecs: [ZstdCodec()], transpose: [2, 0, 1], separator: "/", zarrFormat: 3)),
            ("v3-sharded-zstd", .v3(shape: [3, 50, 70], chunks: [2, 16, 32], dtype: .uint16, codec: ZstdCodec(),
                                    sharding: ShardingSpec(shardShape: [2, 32, 64]))),
        ]
        var manifest: [[String: Any]] = []
        try FileManager.default.createDirectory(atPath: dir + "/sw_expected", withIntermediateDirectories: true)
        for (i, (name, md)) in cases.enumerated() {
            let a = try await ZarrArray.create(store: FileChunkStore(root: dir + "/sw/" + name), path: "", metadata: md)
            var s = UInt64(i + 1)
            let n = 3 * 50 * 70
            var data = [UInt8](repeating: 0, count: 2 * n)
            for j in 0..<n { s = s &* 6364136223846793005 &+ 1442695040888963407; let v = j % 70 < 20 ? 7 : Int(s >> 52); data[2 * j] = UInt8(v & 0xff); data[2 * j + 1] = UInt8(v >> 8) }
            try await a.write(a.fullBox, data)
            try Data(data).write(to: URL(fileURLWithPath: dir + "/sw_expected/\(name).bin"))
            manifest.append(["name": name, "dtype": md.dtype.numpy, "shape": md.shape])
            let back = try await VolumeSource.open(dir + "/sw/" + name).read(a.fullBox)
            XCTAssertEqual(back, data, "\(name) read back by brainmap")
        }
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/sw_manifest.json"))
        let out = try PythonReference.run("tools/interop/codec_cases.py", ["check", dir])
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, cases.count, out)
    }

    /// Reading a whole shard costs 2 requests (its index, then one coalesced range), and so does prefetching it;
    /// a second read of another part of the shard reuses the cached index.
    func testShardRequestCounts() async throws {
        let md = ArrayMetadata.v3(shape: [2, 64, 64], chunks: [1, 16, 16], dtype: .uint8, codec: try ZstdCodec(),
                                  sharding: ShardingSpec(shardShape: [2, 64, 64]))
        let file = FileChunkStore(root: dir + "/s")
        let w = try await ZarrArray.create(store: file, path: "", metadata: md)
        try await w.write(w.fullBox, (0..<(2 * 64 * 64)).map { UInt8($0 % 199) })
        let counting = CountingStore(file)
        let a = try await ZarrArray.open(store: counting, path: "").cached(ChunkCache(capacity: 1 << 20))
        let before = counting.gets   // zarr.json
        _ = try await a.read(a.fullBox)
        XCTAssertEqual(counting.gets - before, 2, "index + one coalesced range for 32 inner chunks")

        let b = try await ZarrArray.open(store: counting, path: "").cached(ChunkCache(capacity: 1 << 20))
        let p0 = counting.gets
        await b.prefetch(b.fullBox)
        for _ in 0..<100 where counting.gets - p0 < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        try await Task.sleep(nanoseconds: 50_000_000)
        XCTAssertEqual(counting.gets - p0, 2, "prefetching a shard is 2 requests too")
        _ = try await b.read(b.fullBox)
        XCTAssertEqual(counting.gets - p0, 2, "the prefetched shard is served from the cache")

        let c = try await ZarrArray.open(store: counting, path: "")   // uncached: index cache only
        let q0 = counting.gets
        _ = try await c.read(Box([0..<1, 0..<16, 0..<16]))
        _ = try await c.read(Box([1..<2, 48..<64, 48..<64]))
        XCTAssertEqual(counting.gets - q0, 3, "one index fetch, then one range per read")
    }

    /// A partial shard write copies the other inner chunks' encoded bytes as they are (proved by writing through a
    /// view whose codec would encode them differently), and a second concurrent writer of the shard is refused.
    func testPartialShardWritesAreVerbatimAndSingleWriter() async throws {
        let spec = ShardingSpec(shardShape: [1, 32, 32])
        let md = ArrayMetadata.v3(shape: [1, 32, 32], chunks: [1, 16, 16], dtype: .uint8, codec: try ZstdCodec(level: 19), sharding: spec)
        let store = FileChunkStore(root: dir + "/p")
        let a = try await ZarrArray.create(store: store, path: "", metadata: md)
        let data = (0..<1024).map { UInt8(($0 * 7) % 251) }
        try await a.write(a.fullBox, data)
        let shardBefore = try await store.get("c/0/0/0")!
        let idx = try spec.parseIndex(Array(shardBefore.suffix(spec.indexBytes([1, 16, 16]))), inner: [1, 16, 16], shardSize: nil)
        let chunk0 = Array(shardBefore[idx[0]!.offset..<(idx[0]!.offset + idx[0]!.length)])

        var other = md; other.codecs = [try ZstdCodec(level: 1)]
        let view = ZarrArray(store: store, path: "", metadata: other)
        try await view.writeChunk([0, 1, 1], [UInt8](repeating: 3, count: 256))
        let shardAfter = try await store.get("c/0/0/0")!
        let idx2 = try spec.parseIndex(Array(shardAfter.suffix(spec.indexBytes([1, 16, 16]))), inner: [1, 16, 16], shardSize: nil)
        XCTAssertEqual(Array(shardAfter[idx2[0]!.offset..<(idx2[0]!.offset + idx2[0]!.length)]), chunk0, "untouched chunk re-encoded")
        let back = try await ZarrArray.open(store: store, path: "").read(a.fullBox)
        for y in 0..<32 { for x in 0..<32 { XCTAssertEqual(back[y * 32 + x], y >= 16 && x >= 16 ? 3 : data[y * 32 + x]) } }

        // Another writer holds the shard: this one is refused, and the shard is left as it was.
        let holding = Task {
            try await store.exclusiveWrite("c/0/0/0") { try await Task.sleep(nanoseconds: 400_000_000) }
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        do {
            try await a.writeChunk([0, 0, 0], [UInt8](repeating: 9, count: 256))
            XCTFail("a second writer of one shard was let through")
        } catch { XCTAssertTrue("\(error)".contains("another writer"), "\(error)") }
        try await holding.value
        let still = try await store.get("c/0/0/0")!
        XCTAssertEqual(still, shardAfter)
    }

    func testCorruptCompressedChunksAreErrorsNamingTheChunk() async throws {
        for (name, codec) in [("zstd", try ZstdCodec() as any Codec), ("gzip", try DeflateCodec(.gzip)), ("lz4", LZ4Codec())] {
            let store = FileChunkStore(root: dir + "/bad-" + name)
            let a = try await ZarrArray.create(store: store, path: "", metadata: ArrayMetadata(shape: [64], chunks: [32], dtype: .uint16, codec: codec))
            try await a.write(a.fullBox, (0..<128).map { UInt8($0) })
            var stored = try await store.get("1")!
            stored = Array(stored.prefix(stored.count / 2))
            try await store.put("1", stored)
            do { _ = try await a.read(a.fullBox); XCTFail("\(name): truncated chunk read") }
            catch { XCTAssertTrue("\(error)".contains("bad-\(name)") && "\(error)".contains("1"), "\(name): \(error)") }
        }
    }
}
