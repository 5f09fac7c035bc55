import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Pyramids built chunk by chunk as level-0 chunks become final, in any order, equal the same pyramid built slice by
/// slice, and numpy's reference (mode with ties to the smallest id; NaN-aware mean) at every level.
final class PyramidTests: XCTestCase {
    /// Level 0 (shape, chunks, dtype) with pseudo-random contents (some chunks never written), its pyramid built as
    /// its chunks complete in a shuffled order, and a copy built slice by slice.
    func check(_ name: String, shape: [Int], chunks: [Int], dtype: DataType, reduction: Reduction, levels: Int,
               value: (inout UInt64) -> Double) throws {
        let dir = PythonReference.tempDir("pyramid-" + name)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FileChunkStore(root: dir)
        let md0 = ArrayMetadata(shape: shape, chunks: chunks, dtype: dtype, fillValue: dtype.kind == .float ? .nan : 0, codec: try BloscCodec())
        let mds = Pyramid.levelMetadata(md0)
        XCTAssertEqual(mds.count, levels)
        func make(_ group: String) throws -> Pyramid {
            let paths = (0..<mds.count).map { "\(group)/\($0)" }
            try Pyramid.createLevels(store: store, paths: paths, metadata: mds, dimensions: [])
            try store.putSync(paths[0] + "/.zarray", md0.zarrV2JSON())
            return Pyramid(store: store, levels: zip(paths, mds).map { ZarrArray(store: store, path: $0, metadata: $1) }, reduction: reduction)
        }
        let a = try make("a"), b = try make("b")
        var s: UInt64 = 0x9E3779B97F4A7C15
        let level0 = a.levels[0]
        let all = level0.chunks(overlapping: level0.fullBox)
        for (i, idx) in all.enumerated() where i % 7 != 3 {   // every 7th chunk never written: fill
            var chunk = [UInt8](repeating: 0, count: md0.chunkBytes)
            chunk.withUnsafeMutableBytes { raw in for e in 0..<md0.chunkElements { storeElement(raw, e, dtype, value(&s)) } }
            let enc = try level0.encodeChunk(chunk)
            try store.putSync(level0.chunkKey(idx), enc)
            try store.putSync(b.levels[0].chunkKey(idx), enc)
        }
        var order = all
        for i in order.indices.reversed() { s = s &* 6364136223846793005 &+ 1; order.swapAt(i, Int(s >> 33) % (i + 1)) }
        var final = Set<[Int]>()
        for idx in order { final.insert(idx); try a.completed(idx) { final.contains($0) } }
        let depth = shape[shape.count - 3]
        for z in 0..<depth { try b.buildSlice(z) }
        for k in 1..<mds.count {
            let la = a.levels[k], lb = b.levels[k]
            for idx in la.chunks(overlapping: la.fullBox) {
                XCTAssertNotNil(try store.getSync(la.chunkKey(idx)), "\(name) level \(k) chunk \(idx) not built")
                XCTAssertEqual(try store.getSync(la.chunkKey(idx)), try store.getSync(lb.chunkKey(idx)), "\(name) level \(k) chunk \(idx)")
            }
        }
        let out = try PythonReference.run("tools/interop/pyramid_check.py", ["levels", dir + "/a", reduction.rawValue])
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, levels - 1, out)
    }

    func testLabelMapModeAndFloatNaNMeanEqualNumpy() throws {
        // 37 × 53 in chunks of 8: 19 × 27, 10 × 14, 5 × 7 (odd edges: windows of one or two pixels).
        try check("labels", shape: [2, 37, 53], chunks: [1, 8, 8], dtype: .uint8, reduction: .mode, levels: 4) { s in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Double(s >> 62)   // 0…3: ties are common
        }
        // Channel-first floats with NaN (not predicted) in about a third of the pixels: all-NaN windows included.
        try check("features", shape: [3, 2, 37, 53], chunks: [3, 1, 8, 8], dtype: .float32, reduction: .mean, levels: 4) { s in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return s >> 62 == 0 ? .nan : Double(Int64(bitPattern: s) >> 20) * 1e-9
        }
        try check("half", shape: [1, 21, 19], chunks: [1, 4, 4], dtype: .float16, reduction: .mean, levels: 4) { s in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return s >> 62 == 0 ? .nan : Double(s >> 40) / Double(1 << 20)
        }
        // Odd chunk sides do not split into 2 × 2 windows: level 0 only.
        XCTAssertEqual(Pyramid.levelMetadata(ArrayMetadata(shape: [1, 90, 90], chunks: [1, 15, 16], dtype: .uint8)).count, 1)
    }
}
