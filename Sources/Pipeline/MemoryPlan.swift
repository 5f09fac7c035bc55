import Foundation
import NeuralNet

/// How a memory budget is spent: fixed costs (the process, the weights), one engine workspace per compute thread,
/// the blocks in flight (window + outputs), the writer's chunk buffers, and the chunk cache with what is left.
/// Built before the run starts; a budget that cannot hold one thread and one block is refused with the minimum.
public struct MemoryPlan: Sendable, CustomStringConvertible {
    public let budget: Int
    public let workers: Int, blocksInFlight: Int, cacheBytes: Int
    public let fixed: Int, perWorker: Int, perBlock: Int, writer: Int
    /// The tissue masks (`MaskMemory`), part of `fixed`.
    public let mask: Int

    /// The runtime, libraries, OpenBLAS's buffers and the allocator's slack, measured on this machine's builds
    /// (peak RSS of a run with a tiny tile, minus what the formulas below count).
    public static let processBase = 96 << 20
    /// The cache never gets less than this (a few source chunks and the window's neighbours).
    public static let minCache = 16 << 20, maxCache = 1 << 30

    public init(budget: Int, threads: Int, weights: Int, perWorker: Int, block: Int, stride: Int,
                bytesPerOutputPixel: Int, mask: Int = 0) throws {
        self.budget = budget; self.perWorker = perWorker; self.mask = mask
        fixed = Self.processBase + weights + mask
        let window = (stride * (block - 1) + 134) * (stride * (block - 1) + 134)
        perBlock = window + block * block * bytesPerOutputPixel
        // The writer holds one array's chunk at a time (features is the largest): the full-size chunk and its
        // encoded copy, counted as three chunks as issue 17 read the writer's peak (BlockWriter now assembles the
        // chunk in place, so two is what it measures; the third is margin for buffers released late). The pyramid
        // chunks built after a block (BlockPyramids) fit the same three: the chunk being built, one chunk below it
        // decoded, and that chunk's stored bytes.
        writer = 3 * block * block * 4 * 64
        let minimum = fixed + perWorker + perBlock + writer + Self.minCache
        guard budget >= minimum else {
            throw PipelineError.budget("--memory-budget \(Self.mib(budget)) cannot hold one tile: this mode needs at least \(Self.mib(minimum)) "
                + "(process \(Self.mib(Self.processBase)), weights \(Self.mib(weights)), tissue masks \(Self.mib(mask)), one engine tile \(Self.mib(perWorker)), "
                + "one block \(Self.mib(perBlock)), writer \(Self.mib(writer)), cache \(Self.mib(Self.minCache))). "
                + "Raise the budget, or lower --block / --tile.")
        }
        var w = min(max(1, threads), 1 + (budget - minimum) / perWorker)
        // Two blocks beyond the workers keep the fetch stage ahead of the network; fewer if the budget is tight.
        var spare = budget - fixed - w * perWorker - writer - Self.minCache
        var inflight = min(w + 2, spare / perBlock)
        if inflight < w { w = max(1, inflight); spare = budget - fixed - w * perWorker - writer - Self.minCache; inflight = min(w + 2, spare / perBlock) }
        workers = w; blocksInFlight = max(1, inflight)
        cacheBytes = min(Self.maxCache, budget - fixed - workers * perWorker - blocksInFlight * perBlock - writer)
    }

    /// MiB for plan-sized numbers; a budget under 1 MiB (`--memory-budget 1`) is shown as given, not as "0 MiB".
    static func mib(_ n: Int) -> String { n >= 1 << 20 ? "\(n >> 20) MiB" : n >= 1 << 10 ? "\(n >> 10) KiB" : "\(n) bytes" }

    public var description: String {
        "\(Self.mib(budget)) budget: process+weights+masks \(Self.mib(fixed)), \(workers) compute threads × \(Self.mib(perWorker)), "
            + "\(blocksInFlight) blocks in flight × \(Self.mib(perBlock)), writer \(Self.mib(writer)), cache \(Self.mib(cacheBytes))"
    }
}
