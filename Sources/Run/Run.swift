#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// A run directory, `RUN.zarr`: a Zarr v2 group whose arrays every step writes, and the one owner of its state —
/// the manifest (`run.json`), the steps' generations and done markers (`.brainmap/`), array creation and
/// replacement, and the group's OME-Zarr attributes. Several processes (shards) may use one run at once: every
/// read-modify-write of the manifest holds an exclusive `flock` on `.brainmap/lock` (the kernel drops it when a
/// process dies), and every file a reader may see is replaced atomically.
public final class Run: @unchecked Sendable {
    public let root: String
    /// The manifest as last read or written by this process.
    public internal(set) var manifest: RunManifest

    public var manifestPath: String { root + "/run.json" }
    var stateDirectory: String { root + "/.brainmap" }
    var trash: String { stateDirectory + "/trash" }
    public var stride: Int { manifest.stride }

    init(root: String, manifest: RunManifest) { self.root = root; self.manifest = manifest }

    /// Opens an existing run (any step but predict): migrates a format-1 run.json, finishes a swap a crash
    /// interrupted, removes leftovers of deleted generations.
    public static func open(_ root: String) throws -> Run {
        guard FileManager.default.fileExists(atPath: root + "/run.json") else {
            throw RunError.input(FileManager.default.fileExists(atPath: root) ? "\(root) is not a brainmap run (no run.json); give the RUN.zarr that predict wrote"
                                 : "\(root) does not exist; give the RUN.zarr that predict wrote")
        }
        let run = Run(root: root, manifest: RunManifest())
        try run.update { _ in }
        return run
    }

    /// Opens the run predict writes into, creating it when absent. `restart` first removes a previous run whole
    /// (moved aside in one rename, then deleted: a kill never leaves done markers that vouch for missing chunks).
    public static func openForPredict(_ root: String) throws -> Run {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: root, isDirectory: &isDir), !isDir.boolValue {
            throw RunError.input("--out \(root) is a file, not a run directory")
        }
        do { try fm.createDirectory(atPath: root + "/.brainmap", withIntermediateDirectories: true) }
        catch { throw RunError.input("cannot create the run directory \(root): \(error.localizedDescription)") }
        let run = Run(root: root, manifest: RunManifest())
        // Under the lock, so that shards starting at once see either nothing or a whole run.json.
        try run.withLock {
            guard !fm.fileExists(atPath: root + "/run.json") else { return }
            let other = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != ".brainmap" }
            guard other.isEmpty else {
                throw RunError.input("--out \(root) exists and is not a brainmap run (no run.json; it holds \(other.sorted().prefix(3).joined(separator: ", "))…); "
                                     + "choose another --out — brainmap does not delete what it did not write")
            }
        }
        try run.update { _ in }
        return run
    }

    /// Reads a run without changing anything (no lock, no recovery): what `status` shows. The manifest is replaced
    /// by atomic renames, so a lock-free read sees a whole one.
    public static func inspect(_ root: String) throws -> Run {
        guard FileManager.default.fileExists(atPath: root + "/run.json") else {
            throw RunError.input(FileManager.default.fileExists(atPath: root) ? "\(root) is not a brainmap run (no run.json); give the RUN.zarr that predict wrote"
                                 : "\(root) does not exist; give the RUN.zarr that predict wrote")
        }
        let run = Run(root: root, manifest: RunManifest())
        run.manifest = try run.readManifest()
        return run
    }

    // MARK: the manifest

    /// Re-reads the manifest, lets `body` change it, and writes it back (with the group's attributes) if it
    /// changed — all under the run's lock.
    @discardableResult
    public func update<T>(_ body: (inout RunManifest) throws -> T) throws -> T {
        let out: T = try withLock {
            var m = try readManifest()
            let before = m
            recover(&m)
            let out = try body(&m)
            // The attributes are compared too: a crash between writing run.json and .zattrs is mended here.
            if m != before || attributes(m).contains(where: { FileManager.default.contents(atPath: root + "/" + $0.key).map { [UInt8]($0) } != $0.value }) {
                try write(m)
            }
            manifest = m
            return out
        }
        emptyTrash()
        return out
    }

    /// Deletes what was moved aside into `.brainmap/trash` (outside the lock: deleting a large tree takes time). Only
    /// its entries: the folder stays, so a rename into it by another process never finds it gone.
    func emptyTrash() {
        for e in (try? FileManager.default.contentsOfDirectory(atPath: trash)) ?? [] { try? FileManager.default.removeItem(atPath: trash + "/" + e) }
    }

    /// predict --restart, under the lock: every array, result and step generation moved aside (deleted after).
    func discardEverything() throws {
        let fm = FileManager.default
        for e in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where e != ".brainmap" { try DurableFile.removeTree(root + "/" + e, trash: trash) }
        for e in (try? fm.contentsOfDirectory(atPath: stateDirectory)) ?? [] where e != "lock" && e != "trash" && !e.hasSuffix(".lock") {
            try DurableFile.removeTree(stateDirectory + "/" + e, trash: trash)
        }
    }

    func withLock<T>(_ body: () throws -> T) throws -> T {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = stateDirectory + "/lock"
        let fd = Glibc.open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw RunError.input("cannot open \(path): \(String(cString: strerror(errno))) — is the run writable?") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw RunError.input("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    func readManifest() throws -> RunManifest {
        guard let data = FileManager.default.contents(atPath: manifestPath) else { return RunManifest() }
        return try parseManifest([UInt8](data))
    }

    /// run.json's bytes → the manifest (format 1 migrated). Untrusted input: depth-limited before parsing (fuzzed).
    func parseManifest(_ data: [UInt8]) throws -> RunManifest {
        guard let doc = try? jsonObject(data, path: manifestPath) else {
            throw RunError.input("\(manifestPath) is not JSON (\(data.count) bytes); restore it, or start over with predict --restart")
        }
        guard doc["format_version"] is Int || doc["identity"] is [String: Any] else {
            throw RunError.input("\(manifestPath) is not a brainmap manifest (no format_version, no identity): \(root) was written by another tool; "
                                 + "brainmap leaves it alone — choose another directory")
        }
        if (doc["format_version"] as? Int ?? 1) < RunManifest.currentFormat { return migrate(doc) }
        do { return try JSONDecoder().decode(RunManifest.self, from: Data(data)) }
        catch { throw RunError.input("\(manifestPath) is damaged (\(data.count) bytes; \(error)); restore it, or start over with predict --restart") }
    }

    /// A format-1 run.json (predict's identity only; journal in RUN/journal; cleanup.json beside): predict becomes
    /// generation 1 with its old journal; arrays found on disk are recorded; the old cleanup/analysis state is not
    /// trusted (those steps recompute once).
    private func migrate(_ doc: [String: Any]) -> RunManifest {
        var m = RunManifest()
        let id = (doc["identity"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
        m.identity = id
        var info: [String: String] = [:]
        if let model = doc["model"] as? String { info["model"] = model }
        if let grid = (doc["blocks"] as? [String: Any])?["grid"] as? [Int], grid.count == 3 { info["blocks_per_slice"] = "\(grid[1] * grid[2])" }
        m.steps["predict"] = StepRecord(command: "predict", parameters: id, generation: 1, inputs: [:],
                                        outputs: [], directory: "journal", info: info, complete: false, freshRestart: false, updated: isoNow())
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where
            FileManager.default.fileExists(atPath: root + "/" + name + "/.zarray") {
            let step = ["labels", "probabilities", "features", "entropy"].contains(name) ? "predict" : name == "labels_clean" ? "cleanup" : name
            let channel = ["probabilities", "features", "pca", "nmf"].contains(name)
            m.arrays[name] = ArrayRecord(step: step, generation: step == "predict" ? 1 : 0,
                                         dimensions: channel ? ["c", "z", "y", "x"] : ["z", "y", "x"],
                                         labelMap: ["labels", "labels_clean", "clusters"].contains(name))
            if step == "predict" { m.steps["predict"]!.outputs.append(name) }
        }
        m.steps["predict"]!.outputs.sort()
        return m
    }

    private func write(_ m: RunManifest) throws {
        try DurableFile.write(manifestPath, json: m)
        let store = FileChunkStore(root: root, durable: true)
        for (key, bytes) in attributes(m).sorted(by: { $0.key < $1.key }) {
            try store.putSync((key as NSString).deletingLastPathComponent + (key.contains("/") ? "/" : "") + ".zgroup", jsonBytes(["zarr_format": 2]))
            try store.putSync(key, bytes)
        }
    }

    /// The group attribute files the manifest implies (relative path → bytes): the run's, and each image group's.
    private func attributes(_ m: RunManifest) -> [String: [UInt8]] {
        var out = [".zattrs": jsonBytes(OMEAttributes.group(m))]
        for name in OMEAttributes.names(m) {
            if let a = OMEAttributes.image(m, name) { out[name + "/.zattrs"] = jsonBytes(a) }
        }
        return out
    }

    /// Finishes swaps a crash interrupted (staging complete, marked ready), and conversions of single arrays to image
    /// groups (`convertToGroup`).
    private func recover(_ m: inout RunManifest) {
        for (name, a) in m.arrays where a.stagingReady {
            if let g = a.staging { try? swapIn(name, generation: g, &m) }
        }
        for (name, a) in m.arrays where a.levels == nil && a.generation > 0 { try? finishConversion(name, &m) }
    }

    // MARK: arrays

    /// Where array `name`'s data of generation `g` lives (relative to the run): in place, or staged.
    func stagingPath(_ name: String, _ g: Int) -> String { ".brainmap/staging/\(name)-g\(g)" }

    /// Moves a finished staged array into place (the old one aside first), recording it. Idempotent: after a crash
    /// at any point it completes on the next call.
    func swapIn(_ name: String, generation g: Int, _ m: inout RunManifest) throws {
        guard var a = m.arrays[name], a.staging == g else { return }
        let staged = root + "/" + stagingPath(name, g), live = root + "/" + name
        if FileManager.default.fileExists(atPath: staged) {
            if !a.stagingReady { a.stagingReady = true; m.arrays[name] = a; try DurableFile.write(manifestPath, json: m) }
            if FileManager.default.fileExists(atPath: live) { try DurableFile.removeTree(live, trash: trash) }
            guard rename(staged, live) == 0 else {
                throw RunError.input("cannot move \(staged) into place at \(live): \(String(cString: strerror(errno)))")
            }
            DurableFile.syncDirectory(root)
        }
        a.generation = g; a.staging = nil; a.stagingReady = false; a.levels = a.stagingLevels; a.stagingLevels = nil
        m.arrays[name] = a
    }

    /// The run's array `name` (its level 0), refusing names that are not arrays of this run (paths outside it included).
    public func arrayPath(_ name: String) throws -> String {
        if let a = manifest.arrays[name], a.generation == 0, FileManager.default.fileExists(atPath: root + "/" + name + "/.zarray") {
            throw RunError.input("\(root)/\(name) was made by an older brainmap that did not record how; run its step (\(a.step)) again")
        }
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix("."), manifest.arrays[name].map({ $0.generation > 0 }) ?? false
                || (manifest.arrays[name] == nil && FileManager.default.fileExists(atPath: root + "/" + name + "/.zarray")) else {
            let have = manifest.arrays.filter { $0.value.generation > 0 }.keys.sorted().joined(separator: ", ")
            throw RunError.input("'\(name)' is not an array of \(root) (it has: \(have.isEmpty ? "none yet" : have)); name one of them")
        }
        return root + "/" + name + (manifest.arrays[name]?.level(0) ?? "")
    }

    /// Live arrays, by name.
    public var arrayNames: [String] { manifest.arrays.filter { $0.value.generation > 0 }.keys.sorted() }
}
