import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Zarr v2 interop both ways with zarr-python and numcodecs.
final class ZarrInteropTests: XCTestCase {
    func testReadsEverythingPythonWrites() async throws {
        let dir = PythonReference.tempDir("zarr-py")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PythonReference.run("tools/interop/zarr_cases.py", ["write", dir])
        let n = try await checkPythonCases(dir: dir, root: dir + "/py.zarr")
        XCTAssertGreaterThan(n, 80)
    }
}

/// Reads every case of DIR/manifest.json from `root` (a local path or URL) and compares with DIR/expected.
@discardableResult
func checkPythonCases(dir: String, root: String, options: SourceOptions = SourceOptions()) async throws -> Int {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as! [[String: Any]]
        for c in manifest {
            let name = c["name"] as! String
            let array = try await VolumeSource.open(root + "/" + name, options: options)
            XCTAssertEqual(array.dtype.numpy, c["dtype"] as? String, name)
            let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/expected/\(name).bin")))
            let full = try await array.read(array.fullBox)
            XCTAssertEqual(full, expected, "full read of \(name)")
            // An unaligned box must equal the same box cut from the expected array.
            let b = (c["box"] as! [[Int]])
            let box = Box(b.map { $0[0]..<$0[1] })
            let part = try await array.read(box)
            XCTAssertEqual(part, cut(expected, shape: array.shape, box: box, elementSize: array.dtype.size), "box read of \(name)")
        }
        return manifest.count
}

final class ZarrInteropWriteTests: XCTestCase {
    func testPythonReadsWhatWeWrite() async throws {
        let dir = PythonReference.tempDir("zarr-sw")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sw_expected", withIntermediateDirectories: true)
        let store = FileChunkStore(root: dir + "/sw.zarr")
        try await ZarrGroup.create(store: store)
        var manifest: [[String: Any]] = []
        let shape = [4, 33, 27], chunks = [3, 8, 16]
        var cases: [(String, DataType, (any Codec)?, ArrayMetadata.Order, String, Double)] = []
        for (i, t) in ["|u1", "<u2", ">u2", "<u4", ">i4", "<i8", "|i1", "<f4", ">f4", "<f8", ">u8"].enumerated() {
            cases.append(("dt\(i)", DataType(numpy: t)!, try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1), .c, ".", 0))
        }
        for (i, cname) in BloscCodec.compressors.enumerated() {
            for sh in [-1, 0, 1, 2] {
                cases.append(("c\(i)s\(sh + 1)", .uint16, try BloscCodec(cname: cname, clevel: 4, shuffle: sh, blocksize: sh == 0 ? 512 : 0), .c, ".", 0))
            }
        }
        cases.append(("slash_raw", .int32, nil, .c, "/", 0))
        cases.append(("fortran", .float32, try BloscCodec(cname: "zstd"), .f, ".", 0))
        cases.append(("fillnan", .float32, try BloscCodec(), .c, ".", .nan))
        cases.append(("fill9", .uint16, nil, .c, "/", 9))
        for (name, dtype, codec, order, sep, fill) in cases {
            let md = ArrayMetadata(shape: shape, chunks: chunks, dtype: dtype, fillValue: fill, order: order, codec: codec, separator: sep)
            let a = try await ZarrArray.create(store: store, path: name, metadata: md)
            var rng = SplitMix(seed: UInt64(name.hashValue & 0xffff))
            let n = shape.reduce(1, *) * dtype.size
            var data = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) }
            if dtype.kind == .float {  // random bytes may be NaN payloads; write real numbers instead
                data = []
                for _ in 0..<(n / dtype.size) {
                    let v = Double(Int(rng.next() % 2001)) - 1000.5
                    data += dtype.size == 4 ? withUnsafeBytes(of: Float(v)) { Array($0) } : withUnsafeBytes(of: v) { Array($0) }
                }
            }
            // Two unaligned writes, leaving a region untouched (it must read as fill_value).
            let b1 = Box([0..<4, 0..<20, 0..<27]), b2 = Box([0..<2, 20..<33, 5..<27])
            try await a.write(b1, cut(data, shape: shape, box: b1, elementSize: dtype.size))
            try await a.write(b2, cut(data, shape: shape, box: b2, elementSize: dtype.size))
            var expected = fillBuffer(count: shape.reduce(1, *), dtype: dtype, fill: fill)
            for b in [b1, b2] { paste(cut(data, shape: shape, box: b, elementSize: dtype.size), into: &expected, shape: shape, box: b, elementSize: dtype.size) }
            let back = try await a.read(a.fullBox)
            XCTAssertEqual(back, expected, "our own round trip of \(name)")
            try Data(expected).write(to: URL(fileURLWithPath: dir + "/sw_expected/\(name).bin"))
            manifest.append(["name": name, "dtype": dtype.numpy, "shape": shape])
        }
        try Data(jsonBytes(manifest)).write(to: URL(fileURLWithPath: dir + "/sw_manifest.json"))
        let out = try PythonReference.run("tools/interop/zarr_cases.py", ["check", dir])
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("ok") }.count, cases.count, out)
    }
}

struct SplitMix {
    var seed: UInt64
    mutating func next() -> UInt64 {
        seed &+= 0x9E37_79B9_7F4A_7C15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func cut(_ data: [UInt8], shape: [Int], box: Box, elementSize: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: box.count * elementSize)
    data.withUnsafeBytes { s in out.withUnsafeMutableBytes { d in
        copyBlock(from: s.baseAddress!, shape: shape, at: box.start, to: d.baseAddress!, shape: box.size,
                  at: .init(repeating: 0, count: shape.count), extent: box.size, elementSize: elementSize)
    } }
    return out
}

func paste(_ part: [UInt8], into data: inout [UInt8], shape: [Int], box: Box, elementSize: Int) {
    part.withUnsafeBytes { s in data.withUnsafeMutableBytes { d in
        copyBlock(from: s.baseAddress!, shape: box.size, at: .init(repeating: 0, count: shape.count), to: d.baseAddress!,
                  shape: shape, at: box.start, extent: box.size, elementSize: elementSize)
    } }
}

func fillBuffer(count: Int, dtype: DataType, fill: Double) -> [UInt8] {
    let e = dtype.native.bytes(of: fill)
    return (0..<count).flatMap { _ in e }
}
