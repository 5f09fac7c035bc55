import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Zarr v3 (incl. sharding_indexed) both ways with zarr-python, and over HTTP with range requests.
final class ZarrV3Tests: XCTestCase {
    func testReadsV3AndShardedArraysPythonWrites() async throws {
        let dir = PythonReference.tempDir("v3-py")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PythonReference.run("tools/interop/zarr_cases.py", ["write3", dir])
        let cases = try await checkPythonCases(dir: dir, root: dir + "/py3.zarr")
        XCTAssertEqual(cases, 6)

        // The same store over HTTP (nginx): inner chunks are fetched by byte range, adjacent ranges coalesced.
        let nginx = try LoopbackServer.nginx(root: dir)
        defer { nginx.stop() }
        var opts = SourceOptions(); let stats = TransferStats(); opts.fetcher = RemoteFetcher(client: HTTPClient(), stats: stats)
        opts.cache = nil   // count real requests
        try await checkPythonCases(dir: dir, root: nginx.url + "/py3.zarr", options: opts)
        let a = try await VolumeSource.open(nginx.url + "/py3.zarr/shard_end_u2", options: opts)
        let before = stats.requests
        _ = try await a.read(Box([0..<4, 0..<64, 0..<64]))   // exactly one shard: 8 inner chunks
        XCTAssertEqual(stats.requests - before, 2, "one index request and one coalesced range request for the shard")
    }

    func testPythonReadsV3ArraysWeWrite() async throws {
        let dir = PythonReference.tempDir("v3-sw")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sw_expected", withIntermediateDirectories: true)
        let store = FileChunkStore(root: dir + "/sw.zarr")
        let shape = [3, 45, 70]
        let blosc = try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1)
        let cases: [(String, ArrayMetadata)] = [
            ("plain", .v3(shape: shape, chunks: [1, 16, 32], dtype: .uint16, fillValue: 3, codec: blosc, dimensionNames: ["z", "y", "x"])),
            ("raw_be", .v3(shape: shape, chunks: [2, 20, 20], dtype: DataType(kind: .int, size: 4, bigEndian: true), fillValue: -1)),
            ("shard_end", .v3(shape: shape, chunks: [1, 8, 16], dtype: .uint16, fillValue: 0, codec: blosc,
                              sharding: ShardingSpec(shardShape: [2, 32, 32]))),
            ("shard_start", .v3(shape: shape, chunks: [1, 16, 16], dtype: .float32, fillValue: .nan, codec: blosc,
                                sharding: ShardingSpec(shardShape: [1, 32, 64], indexLocation: .start))),
        ]
        var manifest: [[String: Any]] = []
        for (name, md) in cases {
            let a = try await ZarrArray.create(store: store, path: name, metadata: md, attributes: ["note": name])
            let es = md.dtype.size
            var rng = SplitMix(seed: 77)
            let n = shape.reduce(1, *)
            var data = [UInt8]()
            for _ in 0..<n {
                let v = Int(rng.next() % 5000)
                switch (md.dtype.kind, es) {
                case (.float, 4): data += withUnsafeBytes(of: Float(v) / 7) { Array($0) }
                case (.int, 4): data += withUnsafeBytes(of: Int32(v - 2500)) { Array($0) }
                default: data += withUnsafeBytes(of: UInt16(v)) { Array($0) }
                }
            }
            // Unaligned writes that leave parts (whole shards, inner chunks) unwritten, then overwrite a piece.
            let b1 = Box([0..<2, 3..<40, 0..<51]), b2 = Box([1..<3, 10..<30, 20..<70])
            try await a.write(b1, cut(data, shape: shape, box: b1, elementSize: es))
            try await a.write(b2, cut(data, shape: shape, box: b2, elementSize: es))
            var expected = fillBuffer(count: n, dtype: md.dtype, fill: md.fillValue)
            for b in [b1, b2] { paste(cut(data, shape: shape, box: b, elementSize: es), into: &expected, shape: shape, box: b, elementSize: es) }
            let back = try await a.read(a.fullBox)
            XCTAssertEqual(back, expected, name)
            let attrs = try await a.attributes()
            XCTAssertEqual(attrs["note"] as? String, name)
            try Data(expected).write(to: URL(fileURLWithPath: dir + "/sw_expected/\(name).bin"))
            // In v3 the byte order belongs to the `bytes` codec; readers hand out native arrays.
            manifest.append(["name": name, "dtype": md.dtype.native.numpy, "shape": shape])
        }
        try Data(jsonBytes(manifest)).write(to: URL(fileURLWithPath: dir + "/sw_manifest.json"))
        let be = String(decoding: try store.getSync("raw_be/zarr.json")!, as: UTF8.self)
        XCTAssertTrue(be.contains("\"endian\" : \"big\""), be)
        let out = try PythonReference.run("tools/interop/zarr_cases.py", ["check", dir])
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("ok") }.count, cases.count, out)
    }

    func testCorruptShardIndexIsReported() async throws {
        let dir = PythonReference.tempDir("v3-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FileChunkStore(root: dir + "/a")
        let md = ArrayMetadata.v3(shape: [1, 32, 32], chunks: [1, 16, 16], dtype: .uint8, codec: try BloscCodec(), sharding: ShardingSpec(shardShape: [1, 32, 32]))
        let a = try await ZarrArray.create(store: store, path: "", metadata: md)
        try await a.write(a.fullBox, [UInt8](repeating: 9, count: 1024))
        var shard = try store.getSync("c/0/0/0")!
        shard[shard.count - 10] ^= 0xff
        try store.putSync("c/0/0/0", shard)
        do { _ = try await a.read(a.fullBox); XCTFail("expected an error") }
        catch { XCTAssertTrue("\(error)".contains("c/0/0/0") && "\(error)".contains("crc32c"), "\(error)") }
    }
}
