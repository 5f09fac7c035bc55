#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Durable done markers: one append-only file per shard in a step generation's directory, a line per finished unit
/// (`done UNIT [VERSION]`), appended and fsynced only after the unit's outputs are durable. They are the truth about
/// what is done — an output file that exists may be one a killed process wrote before it could mark it, and is
/// simply written again. A line that is not whole (a crash mid-append) is ignored. VERSION is the version of the
/// input the unit was computed from (cleanup: the predicted slice's), so a unit whose input changed is stale.
public final class DoneMarkers: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()

    /// The markers of `name` (a shard's `fileTag`, or `reduce`: the process that merges map tasks' passes).
    public init(directory dir: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/" + name + ".log"
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw RunError.input("cannot open the done markers \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Records a finished unit durably (one write of a whole line, then fsync).
    public func markDone(_ unit: String, version: String = "") throws {
        let line = Array(("done \(unit)" + (version.isEmpty ? "" : " \(version)") + "\n").utf8)
        try lock.withLock {
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n == line.count, fsync(fd) == 0 else {
                throw RunError.input("cannot append to \(path): \(String(cString: strerror(errno))) — free disk space and re-run to resume")
            }
        }
    }

    /// Every unit any shard finished in `dir`, with the version it recorded (the last line wins).
    public static func read(directory dir: String) -> [String: String] {
        var done: [String: String] = [:]
        for (_, units) in readPerShard(directory: dir) { done.merge(units) { _, b in b } }
        return done
    }

    /// Per shard file (`shard-I-of-N`): its finished units and their versions.
    public static func readPerShard(directory dir: String) -> [String: [String: String]] {
        lines(directory: dir).mapValues { Dictionary($0.map { ($0.unit, $0.version) }) { _, b in b } }
    }

    /// Per shard file: the unit it finished last (a map task's or reduce's last pass).
    public static func lastPerShard(directory dir: String) -> [String: String] {
        lines(directory: dir).compactMapValues { $0.last?.unit }
    }

    /// Per shard file, its whole marker lines in the order written.
    private static func lines(directory dir: String) -> [String: [(unit: String, version: String)]] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [:] }
        var out: [String: [(unit: String, version: String)]] = [:]
        for n in names.sorted() where n.hasSuffix(".log") {
            guard let data = FileManager.default.contents(atPath: dir + "/" + n) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            let whole = text.hasSuffix("\n") ? Substring(text) : text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)]
            var units: [(unit: String, version: String)] = []
            for line in whole.split(separator: "\n") {
                let p = line.split(separator: " ")
                if p.count >= 2, p.count <= 3, p[0] == "done" { units.append((String(p[1]), p.count == 3 ? String(p[2]) : "")) }
            }
            out[String(n.dropLast(4))] = units
        }
        return out
    }
}
