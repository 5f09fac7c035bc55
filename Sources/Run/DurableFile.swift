#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// Small files that must never be seen half-written (the manifest, shard statistics, step state): written to a
/// temporary sibling, fsynced, renamed into place, and the directory fsynced, so a reader sees the old bytes or the
/// new ones, and after a crash the new ones are there only if the rename was made durable.
public enum DurableFile {
    public static func write(_ path: String, _ bytes: [UInt8]) throws {
        // The chunk store's durable put is this very sequence (temp sibling, fsync, rename, fsync of the folder).
        let dir = (path as NSString).deletingLastPathComponent
        do { try FileChunkStore(root: dir.isEmpty ? "." : dir, durable: true).putSync((path as NSString).lastPathComponent, bytes) }
        catch { throw RunError.input("cannot write \(path): \(error) — check permissions and free space, and re-run; nothing finished is lost") }
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

    /// Moves a file or directory tree out of the way atomically (rename into `trash`, emptied later by
    /// `Run.emptyTrash`): a crash leaves either the tree in place or a leftover under `trash`, never half a tree at
    /// `path`.
    public static func removeTree(_ path: String, trash: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        try FileManager.default.createDirectory(atPath: trash, withIntermediateDirectories: true)
        let aside = trash + "/" + (path as NSString).lastPathComponent + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(path, aside) == 0 else {
            if errno == ENOENT && !FileManager.default.fileExists(atPath: path) { return }   // another process moved it first
            throw RunError.input("cannot move \(path) aside to delete it: \(String(cString: strerror(errno)))")
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }
}
