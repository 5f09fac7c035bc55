import Foundation
import VolumeStore

/// The pyramids of a step's outputs, built as the step's blocks (one level-0 chunk of each output) become final:
/// after a block's chunks are written — and, for a step with done markers, its marker is durable — every chunk
/// above it whose blocks below are all final is built, from the chunks just written and their neighbours, one at a
/// time. A pyramid chunk is built only from final blocks, and a final block is not rewritten, so a built chunk is
/// right: a kill at any instant leaves chunks that are right or absent, and `finish` builds the absent ones whose
/// blocks are final by then (a chunk over blocks of several shards is built by the last of them to finish, or by
/// the next run). Blocks are numbered row-major over (z, block row, block column), predict's block ids.
public final class BlockPyramids: @unchecked Sendable {
    private let pyramids: [Pyramid]
    private let rows: Int, cols: Int
    private let lock = NSLock()
    private var final: Set<Int>

    /// - Parameter final: blocks already final (done markers of earlier runs).
    public init(_ pyramids: [Pyramid], rows: Int, cols: Int, final: Set<Int> = []) {
        self.pyramids = pyramids; self.rows = rows; self.cols = cols; self.final = final
    }

    private func id(_ idx: [Int]) -> Int {
        let n = idx.count
        return (idx[n - 3] * rows + idx[n - 2]) * cols + idx[n - 1]
    }

    /// Block (z, by, bx) is final: builds what it completes.
    public func completed(z: Int, by: Int, bx: Int) throws {
        guard !pyramids.isEmpty else { return }
        let final = lock.withLock { self.final.insert((z * rows + by) * cols + bx); return self.final }
        for p in pyramids { try p.completed(p.index(z: z, y: by, x: bx)) { final.contains(id($0)) } }
    }

    /// Builds the missing chunks of `slices` over blocks in `final` (nil: every block).
    public func finish(slices: [Int], final: Set<Int>?) throws {
        for p in pyramids { for z in slices { try p.buildSlice(z) { final?.contains(self.id($0)) ?? true } } }
    }
}

extension BlockPyramids {
    /// predict's: its outputs' pyramids over the block grid, blocks done before already final.
    convenience init(session: StepSession, grid: BlockGrid, outputs: [OutputKind]) {
        self.init(outputs.compactMap { session.pyramid($0.rawValue) }, rows: grid.rows, cols: grid.cols,
                  final: Set(session.done().keys.compactMap(Int.init)))
    }

    func completed(_ b: OutputBlock, grid: BlockGrid) throws { try completed(z: b.z, by: b.y0 / grid.block, bx: b.x0 / grid.block) }
}
