#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// All-or-nothing outputs: commands write a file or directory under a temporary name beside the target and rename
/// it into place only when it is complete. A failure (a corrupt input chunk, a full disk, a signal) leaves the
/// previous state of the target untouched and nothing half-written under its name.
public enum OutputPath {
    /// A hidden sibling of `path` unique to this process: "dir/.name.tmp-PID-RANDOM".
    public static func temporary(beside path: String) -> String {
        let ns = path as NSString
        let dir = ns.deletingLastPathComponent
        return (dir.isEmpty ? "" : dir + "/") + ".\(ns.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Moves `tmp` to `path`, replacing a file or directory there (a directory is swapped aside, then removed).
    public static func replace(_ path: String, with tmp: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let old = temporary(beside: path) + ".old"
            guard rename(path, old) == 0 else { throw VolumeError.io(path: path, reason: "cannot move the old output aside: \(String(cString: strerror(errno)))") }
            guard rename(tmp, path) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = rename(old, path)
                throw VolumeError.io(path: path, reason: "cannot move the new output into place: \(reason)")
            }
            remove(old)
            return
        }
        guard rename(tmp, path) == 0 else { throw VolumeError.io(path: path, reason: "cannot move the output into place: \(String(cString: strerror(errno)))") }
    }

    /// Removes a file or directory tree, ignoring errors (cleanup after a failure).
    public static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
