#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A chunk store on a local directory. Writes go to a temporary file in the same directory and are renamed into
/// place, so a process killed at any instant leaves either the old chunk or the new one.
///
/// With `durable`, a write returns only once the data and the rename are on disk (fsync of the file, then of its
/// directory): what a journal of finished work must wait for before it records the work as done.
public struct FileChunkStore: ChunkStore {
    public let root: String
    public var location: String { root }
    public let durable: Bool
    /// Blocking reads and writes run here when set (never on Swift's cooperative threads); else inline.
    public let io: ThreadPool?

    public init(root: String, durable: Bool = false, io: ThreadPool? = nil) {
        // "" is the working directory, never the filesystem root ("" + "/" + key would be absolute).
        self.root = root.isEmpty ? "." : root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        self.durable = durable; self.io = io
    }

    private func path(_ key: String) -> String { key.isEmpty ? root : root + "/" + key }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard let io else { return try body() }
        return try await io.run(body)
    }

    public func get(_ key: String) async throws -> [UInt8]? { try await blocking { try self.getSync(key) } }

    public func put(_ key: String, _ value: [UInt8]) async throws { try await blocking { try self.putSync(key, value) } }

    /// Opens the file of `key` and passes its descriptor and size to `body`; nil when there is no such file
    /// (or it is a directory).
    private func withFile<T>(_ key: String, _ body: (Int32, Int, String) throws -> T) throws -> T? {
        let p = path(key)
        let fd = open(p, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw VolumeError.io(path: p, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VolumeError.io(path: p, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return nil }
        return try body(fd, Int(st.st_size), p)
    }

    public func get(_ key: String, range: ByteRange) async throws -> [UInt8]? {
        try await blocking { try self.withFile(key) { fd, size, p in try self.readRange(fd, size, p, range) } }
    }

    private func readRange(_ fd: Int32, _ size: Int, _ p: String, _ range: ByteRange) throws -> [UInt8] {
        let start = range.offset ?? size - range.length
        guard start >= 0, start + range.length <= size else {
            throw VolumeError.io(path: p, reason: "range \(start)+\(range.length) is beyond the file's \(size) bytes (truncated?)")
        }
        var out = [UInt8](repeating: 0, count: range.length)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, range.length, off_t(start)) }
        guard n == range.length else { throw VolumeError.io(path: p, reason: "short read (\(n) of \(range.length) bytes)") }
        return out
    }

    /// Synchronous read, for callers outside async contexts (TIFF import, tests).
    public func getSync(_ key: String) throws -> [UInt8]? {
        try withFile(key) { fd, size, p in try readAll(fd, size, p) }
    }

    private func readAll(_ fd: Int32, _ size: Int, _ p: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < size {
                let n = read(fd, buf.baseAddress! + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw VolumeError.io(path: p, reason: String(cString: strerror(errno)))
                }
                if n == 0 { break }
                done += n
            }
        }
        if done != size { throw VolumeError.io(path: p, reason: "file shrank while reading (\(done) of \(size) bytes)") }
        return out
    }

    public func putSync(_ key: String, _ value: [UInt8]) throws {
        let p = path(key)
        let dir = (p as NSString).deletingLastPathComponent
        try makeDirectories(dir)
        let tmp = dir + "/.tmp-" + ((p as NSString).lastPathComponent) + "-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw VolumeError.io(path: tmp, reason: String(cString: strerror(errno))) }
        var done = 0
        let failure: String? = value.withUnsafeBytes { buf -> String? in
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                done += n
            }
            if durable && fsync(fd) != 0 { return String(cString: strerror(errno)) }
            return nil
        }
        close(fd)
        if let failure {
            unlink(tmp)
            throw VolumeError.io(path: p, reason: failure + (failure.contains("space") ? " — free some disk space and re-run; finished chunks are kept" : ""))
        }
        guard rename(tmp, p) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw VolumeError.io(path: p, reason: reason)
        }
        if durable { try syncDirectory(dir) }
    }

    /// Makes a rename in `dir` durable.
    private func syncDirectory(_ dir: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        guard dfd >= 0 else { throw VolumeError.io(path: dir, reason: String(cString: strerror(errno))) }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw VolumeError.io(path: dir, reason: "fsync: " + String(cString: strerror(errno))) }
    }

    /// Holds an exclusive `flock` on a hidden lock file beside `key` while `body` runs; if another writer (another
    /// process, or another task of this one) holds it, refuses at once. The kernel drops the lock if the process
    /// dies, so a crash never leaves a shard locked.
    public func exclusiveWrite(_ key: String, _ body: @Sendable () async throws -> Void) async throws {
        let p = path(key)
        let dir = (p as NSString).deletingLastPathComponent
        try makeDirectories(dir)
        let lockPath = dir + "/." + (p as NSString).lastPathComponent + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw VolumeError.io(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw VolumeError.io(path: p, reason: "another writer is updating this shard right now; one writer per shard "
                + "(give each writer whole shards), then re-run")
        }
        defer { flock(fd, LOCK_UN) }
        try await body()
    }

    public func size(_ key: String) async throws -> Int? {
        var st = stat()
        guard stat(path(key), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    /// Whether a value is stored under `key` (a regular file).
    public func containsSync(_ key: String) -> Bool {
        var st = stat()
        return stat(path(key), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Removes the value under `key` if present.
    public func delete(_ key: String) throws {
        if unlink(path(key)) != 0 && errno != ENOENT {
            throw VolumeError.io(path: path(key), reason: String(cString: strerror(errno)))
        }
    }

    private func makeDirectories(_ dir: String) throws {
        var st = stat()
        if stat(dir, &st) == 0 { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            if stat(dir, &st) == 0 { return }  // created concurrently by another writer
            throw VolumeError.io(path: dir, reason: "cannot create directory: \(error.localizedDescription)")
        }
    }
}
