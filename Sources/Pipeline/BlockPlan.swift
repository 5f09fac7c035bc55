@_exported import Run

/// One unit of work: a rectangle of output pixels of one slice, which is exactly one chunk of every output array
/// (so each chunk is computed and written by one task, never read-modify-written: tasks are idempotent, and
/// shards never touch the same file).
public struct OutputBlock: Hashable, Sendable, CustomStringConvertible {
    /// Slice, and the block's origin and size in output pixels (output pixel (i, j) is source pixel (S·i, S·j)).
    public let z: Int, y0: Int, x0: Int, height: Int, width: Int
    /// Row-major index of the block in the whole output grid (z, block row, block column): the journal's key.
    public let id: Int
    public var pixels: Int { height * width }
    public var description: String { "z=\(z) y=\(y0)..<\(y0 + height) x=\(x0)..<\(x0 + width)" }
}

/// The grid of output blocks over the source's full (z, y, x) extent at output stride S.
public struct BlockGrid: Sendable {
    public let depth: Int, outHeight: Int, outWidth: Int, block: Int
    public let rows: Int, cols: Int

    public init(sourceShape s: [Int], stride: Int, block: Int) {
        depth = s[0]; outHeight = (s[1] + stride - 1) / stride; outWidth = (s[2] + stride - 1) / stride
        self.block = block
        rows = (outHeight + block - 1) / block; cols = (outWidth + block - 1) / block
    }

    public var blocksPerSlice: Int { rows * cols }

    public func blocks(slice z: Int) -> [OutputBlock] {
        (0..<rows).flatMap { by in (0..<cols).map { bx in
            let y0 = by * block, x0 = bx * block
            return OutputBlock(z: z, y0: y0, x0: x0, height: min(block, outHeight - y0), width: min(block, outWidth - x0),
                               id: (z * rows + by) * cols + bx)
        } }
    }
}

extension Shard {
    /// Block k belongs to shard k mod N.
    public func owns(_ b: OutputBlock) -> Bool { owns(b.id) }
}
