import Foundation
#if canImport(Glibc)
import Glibc
#endif
#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// `brainmap pyramid RUN`: pyramids for runs that have none or an unfinished one. An array an older brainmap wrote
/// as a single array at `RUN/NAME` is converted to an image group: its levels are built beside it under
/// `.brainmap/pyramid/NAME/`, then — under the run's lock — the array moves to `…/NAME/0` and the group into place at
/// `RUN/NAME` (two renames; a crash between them is finished by the next process that opens the run), and the
/// manifest records the levels. Its chunks are not rewritten.
extension Run {
    /// Builds the missing pyramid chunks of `names` (nil: every live array); returns the levels per array.
    public func buildPyramids(_ names: [String]?, progress: (String, Int, Int) -> Void = { _, _, _ in }) async throws -> [String: Int] {
        let chosen = names ?? arrayNames
        for n in chosen { _ = try arrayPath(n) }
        var out: [String: Int] = [:]
        for name in chosen {
            let a = manifest.arrays[name]!
            // Not under a step that is writing it (its lock is held shared while it runs).
            let lock = try StepLock(stateDirectory + "/\(a.step).lock")
            guard lock.tryExclusive() else {
                throw RunError.shards("brainmap \(a.step) is writing \(root)/\(name) right now; build its pyramid when it has finished "
                                      + "(the step builds the pyramid of what it writes itself)")
            }
            defer { lock.unlock() }
            let store = FileChunkStore(root: root, durable: true)
            let level0 = try await ZarrArray.open(store: store, path: name + a.level(0))
            let md = Pyramid.levelMetadata(level0.metadata)
            let converting = a.levels == nil
            let base = converting ? ".brainmap/pyramid/\(name)" : name
            if converting {
                try? DurableFile.removeTree(root + "/" + base, trash: trash)
                try Pyramid.createLevels(store: store, paths: (0..<md.count).map { "\(base)/\($0)" }, metadata: md, dimensions: a.dimensions)
            } else {
                // A level whose metadata is gone (removed by hand, a damaged copy): its chunks are of unknown origin,
                // so it is made again empty and every chunk of it rebuilt.
                for k in 1..<md.count where !FileManager.default.fileExists(atPath: "\(root)/\(base)/\(k)/.zarray") {
                    try? DurableFile.removeTree("\(root)/\(base)/\(k)", trash: trash)
                    try Pyramid.createLevel(store: store, path: "\(base)/\(k)", metadata: md[k], dimensions: a.dimensions)
                }
            }
            let levels = [level0] + (1..<md.count).map { ZarrArray(store: store, path: "\(base)/\($0)", metadata: md[$0]) }
            let pyramid = Pyramid(store: store, levels: levels, reduction: a.labelMap ? .mode : .mean)
            // predict's blocks are final once done (a slice may be partly predicted); other steps' arrays once in place.
            let done = a.step == "predict" ? Set(self.done(step: "predict").keys) : nil
            let depth = level0.shape[level0.shape.count - 3]
            let rows = (level0.shape[level0.shape.count - 2] + level0.metadata.chunks[level0.shape.count - 2] - 1) / level0.metadata.chunks[level0.shape.count - 2]
            let cols = (level0.shape.last! + level0.metadata.chunks.last! - 1) / level0.metadata.chunks.last!
            for z in 0..<depth {
                progress(name, z, depth)
                try pyramid.buildSlice(z) { idx in
                    done.map { $0.contains("\((z * rows + idx[idx.count - 2]) * cols + idx[idx.count - 1])") } ?? true
                }
            }
            progress(name, depth, depth)
            if converting {
                try update { m in
                    guard m.arrays[name]?.levels == nil, m.arrays[name]?.generation == a.generation else { return }
                    try move(root + "/" + name, root + "/" + base + "/0")
                    try finishConversion(name, &m)
                }
            }
            out[name] = md.count
        }
        return out
    }

    /// Finishes converting single array `name` to an image group after a crash (see `buildPyramids`): the group
    /// into place, its levels recorded. Does nothing when no conversion of `name` is under way.
    func finishConversion(_ name: String, _ m: inout RunManifest) throws {
        let fm = FileManager.default, live = root + "/" + name, built = stateDirectory + "/pyramid/" + name
        guard !fm.fileExists(atPath: live + "/.zarray") else { return }
        if !fm.fileExists(atPath: live), fm.fileExists(atPath: built + "/0/.zarray") { try move(built, live) }
        guard fm.fileExists(atPath: live + "/0/.zarray") else { return }
        var n = 1
        while fm.fileExists(atPath: live + "/\(n)/.zarray") { n += 1 }
        m.arrays[name]!.levels = n
    }

    private func move(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw RunError.input("cannot move \(from) to \(to): \(String(cString: strerror(errno)))") }
        DurableFile.syncDirectory((to as NSString).deletingLastPathComponent)
        DurableFile.syncDirectory((from as NSString).deletingLastPathComponent)
    }
}
