import Foundation
import XCTest
import TestSupport
import VolumeStore
@testable import Pipeline

/// Issue 17, case 7 (memory): the tissue masks are in predict's memory plan, a `--mask` slice is read in bands (not
/// whole), and the writer's chunk buffers are counted as issue 17 counted them.
final class MaskMemoryTests: XCTestCase {
    func testMasksAreInThePlan() throws {
        let shape = [4, 1420, 5805]
        XCTAssertEqual(MaskMemory.plannedBytes(rule: .none, sourceShape: shape, sourceChunkRows: 512, elementSize: 1), 0)
        let cells = 89 * 363   // ceil(1420/16) × ceil(5805/16)
        XCTAssertEqual(MaskMemory.plannedBytes(rule: .automatic, sourceShape: shape, sourceChunkRows: 512, elementSize: 1),
                       4 * cells + 2 * (19 * cells + 512 * 5805))
        XCTAssertEqual(MaskMemory.plannedBytes(rule: .source("m"), sourceShape: shape, sourceChunkRows: 512, elementSize: 1),
                       4 * 1420 * 5805 + 2 * (1420 * 5805 + 64 * 5805 * 8))
        // A budget that fits without the masks is refused with them, and the message names them.
        let mask = MaskMemory.plannedBytes(rule: .source("m"), sourceShape: shape, sourceChunkRows: 512, elementSize: 1)
        // The smallest budget for one thread and one 64² block without masks: exactly enough, then too little with them.
        let perBlock = (63 + 134) * (63 + 134) + 64 * 64 * 300, writer = 3 * 64 * 64 * 4 * 64
        let minimum = MemoryPlan.processBase + (1 << 20) + (50 << 20) + perBlock + writer + MemoryPlan.minCache
        let bare = try MemoryPlan(budget: minimum, threads: 1, weights: 1 << 20, perWorker: 50 << 20, block: 64, stride: 1,
                                  bytesPerOutputPixel: 300)
        XCTAssertEqual(bare.writer, writer)
        XCTAssertEqual(bare.mask, 0)
        XCTAssertThrowsError(try MemoryPlan(budget: minimum, threads: 1, weights: 1 << 20, perWorker: 50 << 20, block: 64, stride: 1,
                                            bytesPerOutputPixel: 300, mask: mask)) { e in
            XCTAssertTrue("\(e)".contains("tissue masks \(mask >> 20) MiB"), "\(e)")
        }
        let withMask = try MemoryPlan(budget: 600 << 20, threads: 1, weights: 1 << 20, perWorker: 50 << 20, block: 64, stride: 1,
                                      bytesPerOutputPixel: 300, mask: mask)
        XCTAssertEqual(withMask.fixed, MemoryPlan.processBase + (1 << 20) + mask)
        // A budget of 1 byte is shown as such, not as "0 MiB".
        XCTAssertThrowsError(try MemoryPlan(budget: 1, threads: 1, weights: 0, perWorker: 1, block: 16, stride: 1, bytesPerOutputPixel: 1)) { e in
            XCTAssertTrue("\(e)".contains("--memory-budget 1 bytes cannot hold"), "\(e)")
        }
    }

    /// A --mask slice of 200 rows, read in bands of 64, gives the cells a whole-slice read gave.
    func testSourceMaskReadInBandsEqualsWholeSlice() async throws {
        let dir = PythonReference.tempDir("mask-bands")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (h, w) = (200, 70)
        let src = try await ZarrArray.create(store: FileChunkStore(root: dir + "/src"), path: "",
                                             metadata: ArrayMetadata(shape: [2, 2 * h, 2 * w], chunks: [1, 128, 128], dtype: .uint8))
        let m = try await ZarrArray.create(store: FileChunkStore(root: dir + "/mask"), path: "",
                                           metadata: ArrayMetadata(shape: [2, h, w], chunks: [1, 48, 32], dtype: .uint16))
        var values = [UInt16](repeating: 0, count: 2 * h * w)
        for i in values.indices where (i * 2654435761) % 7 < 3 { values[i] = UInt16(i % 3 == 0 ? 256 : 1) }
        try await m.write(m.fullBox, values.withUnsafeBytes { Array($0) })
        for z in 0..<2 {
            let got = try await MaskProvider.compute(z, rule: .source("mask"), source: src, mask: m)
            XCTAssertEqual(got?.factor, 2)
            XCTAssertEqual(got?.cells, (0..<(h * w)).map { values[z * h * w + $0] != 0 ? 1 : 0 })
        }
    }
}
