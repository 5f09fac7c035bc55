#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The record of finished blocks: one append-only file per shard under `RUN.zarr/journal/`, a line per block,
/// appended (and fsynced) only after the block's chunks are durable. It is the truth about what is done — a chunk
/// file that exists may be one a killed process renamed into place before it could journal it, and is simply
/// written again. Lines that are not whole (a crash mid-append) are ignored.
public final class Journal: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()

    /// predict's journal of one shard.
    public convenience init(runRoot: String, shard: Shard) throws {
        try self.init(directory: runRoot + "/journal", name: "shard-\(shard.index)-of-\(shard.count)")
    }

    /// A journal file `directory/name.log` (other jobs journal their own units, e.g. cleanup's slices).
    public init(directory dir: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/" + name + ".log"
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw PipelineError.input("cannot open the journal \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Records a finished block durably (one write of a whole line, then fsync).
    public func append(_ id: Int) throws {
        let line = Array("done \(id)\n".utf8)
        try lock.withLock {
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n == line.count, fsync(fd) == 0 else {
                throw PipelineError.input("cannot append to the journal \(path): \(String(cString: strerror(errno))) — free disk space and re-run to resume")
            }
        }
    }

    /// The ids of every block any shard finished.
    public static func finished(runRoot: String) throws -> Set<Int> { try finished(directory: runRoot + "/journal") }

    /// The ids recorded by every journal file in `dir`.
    public static func finished(directory dir: String) throws -> Set<Int> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var done = Set<Int>()
        for n in names where n.hasSuffix(".log") {
            guard let data = FileManager.default.contents(atPath: dir + "/" + n) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            let whole = text.hasSuffix("\n") ? Substring(text) : text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)]
            for line in whole.split(separator: "\n") {
                let p = line.split(separator: " ")
                if p.count == 2, p[0] == "done", let id = Int(p[1]) { done.insert(id) }
            }
        }
        return done
    }
}
