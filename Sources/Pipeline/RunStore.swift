import Foundation
import VolumeStore

/// predict's view of its run: the output arrays of this generation (created in place through the run's owner,
/// `Run`), the store the writer puts chunks into, and the block grid.
public struct RunStore: Sendable {
    public let root: String
    public let store: FileChunkStore
    public let arrays: [OutputKind: ZarrArray]
    public let grid: BlockGrid

    public static func open(session: StepSession, outputs: [OutputKind], precision: OutputPrecision, grid: BlockGrid,
                            io: ThreadPool) async throws -> RunStore {
        var arrays: [OutputKind: ZarrArray] = [:]
        for k in outputs {
            arrays[k] = try await session.array(k.rawValue, metadata: try k.metadata(grid: grid, precision: precision),
                                                dimensions: k.dimensionNames, labelMap: k == .labels, staged: false)
        }
        let root = session.run.root
        return RunStore(root: root, store: FileChunkStore(root: root, durable: true, io: io), arrays: arrays, grid: grid)
    }
}
