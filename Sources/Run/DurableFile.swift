#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Small files that must never be seen half-written (the manifest, shard statistics, step state): written to a
/// temporary sibling, fsynced, renamed into place, and the directory fsynced, so a reader sees the old bytes or the
/// new ones, and after a crash the new ones are there only if the rename was made durable.
public enum DurableFile {
    public static func write(_ path: String, _ bytes: [UInt8]) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        let tmp = (dir.isEmpty ? "" : dir + "/") + ".\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw RunError.input("cannot write \(path): \(String(cString: strerror(errno))) — check permissions and free space") }
        var done = 0
        let failure: String? = bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 { if errno == EINTR { continue }; return String(cString: strerror(errno)) }
                done += n
            }
            return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
        }
        close(fd)
        if let failure {
            unlink(tmp)
            throw RunError.input("cannot write \(path): \(failure) — free some disk space and re-run; nothing finished is lost")
        }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno)); unlink(tmp)
            throw RunError.input("cannot move \(tmp) to \(path): \(reason)")
        }
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    public static func write<T: Encodable>(_ path: String, json value: T) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try write(path, [UInt8](try e.encode(value)))
    }

    /// Decodes a JSON file written by `write(_:json:)`; nil when the file does not exist.
    public static func read<T: Decodable>(_ path: String, as: T.Type) throws -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do { return try d.decode(T.self, from: data) }
        catch { throw RunError.input("\(path) is damaged (\(data.count) bytes; \(error)); remove it, or re-run with --restart") }
    }

    /// Makes renames and creations in `dir` durable (best effort: some file systems refuse fsync on directories).
    public static func syncDirectory(_ dir: String) {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        guard dfd >= 0 else { return }
        _ = fsync(dfd)
        close(dfd)
    }

    /// Moves a file or directory tree out of the way atomically (rename into `trash`), then deletes it: a crash
    /// leaves either the tree in place or a leftover under `trash`, never half a tree at `path`.
    public static func removeTree(_ path: String, trash: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        try FileManager.default.createDirectory(atPath: trash, withIntermediateDirectories: true)
        let aside = trash + "/" + (path as NSString).lastPathComponent + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(path, aside) == 0 else {
            throw RunError.input("cannot move \(path) aside to delete it: \(String(cString: strerror(errno)))")
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
        try? FileManager.default.removeItem(atPath: aside)
    }
}
