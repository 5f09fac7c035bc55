#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// Versions of what steps read, so that a step knows whether its saved work is stale.
///
/// - `predict@all`, `predict@3,4`: the predicted blocks of those slices (predict's generation and, per slice, the
///   set of finished blocks): adding or recomputing blocks changes it.
/// - `step:NAME`: another step's generation, whether it finished, and its done markers (cleanup's slices).
/// - `source:PATH`: an input outside the run, identified by its path (brainmap cannot see it change).
extension Run {
    public static func predictInput(slices: [Int]?) -> String {
        "predict@" + (slices.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "all")
    }
    public static func stepInput(_ name: String) -> String { "step:" + name }
    public static func sourceInput(_ path: String) -> String { "source:" + path }

    /// A local source's path in one spelling (absolute, no `.`, `..` or trailing `/`), so that a step's parameters
    /// and inputs do not differ by how a path was typed; addresses (`scheme://…`) and any `?query` are kept as given.
    public static func canonicalSource(_ path: String) -> String {
        guard !path.contains("://"), !path.isEmpty else { return path }
        let q = path.firstIndex(of: "?")
        let base = String(path[..<(q ?? path.endIndex)]), query = q.map { String(path[$0...]) } ?? ""
        return URL(fileURLWithPath: base).standardizedFileURL.path + query
    }

    /// A descriptor as people read it.
    static func describe(_ d: String) -> String {
        if d.hasPrefix("predict@") { return "predicted slices " + d.dropFirst(8) }
        if d.hasPrefix("step:") { return String(d.dropFirst(5)) }
        if d.hasPrefix("source:") { return String(d.dropFirst(7)) }
        return d
    }

    /// The current version of an input descriptor.
    public func version(of d: String) -> String {
        if d.hasPrefix("predict@") {
            let spec = d.dropFirst(8)
            let versions = predictedSliceVersions()
            let zs = spec == "all" ? versions.keys.sorted() : spec.split(separator: ",").compactMap { Int($0) }
            let g = manifest.steps["predict"]?.generation ?? 0
            return "p\(g)." + fnv(zs.map { "\($0)=\(versions[$0] ?? "-")" }.joined(separator: ";"))
        }
        if d.hasPrefix("step:") {
            let name = String(d.dropFirst(5))
            guard let s = manifest.steps[name] else { return "absent" }
            let marks = DoneMarkers.read(directory: root + "/" + s.directory)
            return "\(name).g\(s.generation)" + (s.complete ? "" : ".incomplete")
                + (marks.isEmpty ? "" : "." + fnv(marks.keys.sorted().map { "\($0)=\(marks[$0]!)" }.joined(separator: ";")))
        }
        if d.hasPrefix("source:") { return Run.sourceVersion(String(d.dropFirst(7))) }
        return "unknown"
    }

    /// A source outside the run: for a local array, its metadata and the modification times of its folder and every
    /// folder under it (chunk files written, replaced or removed change their folder's time; nested chunk keys — zarr
    /// v3's `c/0/0/0`, v2's "/" separator, an OME-Zarr group's levels — put chunks in sub-folders); a remote one is
    /// known by its address only.
    static func sourceVersion(_ path: String) -> String {
        let base = path.split(separator: "?").first.map(String.init) ?? path
        var st = stat()
        guard !base.contains("://"), stat(base, &st) == 0 else { return path }
        let meta = [".zarray", "zarr.json", ".zgroup"].compactMap { FileManager.default.contents(atPath: base + "/" + $0) }.first ?? Data()
        // The folder's own time as before (a flat array keeps the version it had), then its sub-folders' if any.
        let sub = subfolderTimes(base)
        return path + "@" + fnv(String(decoding: meta, as: UTF8.self) + "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" + (sub.isEmpty ? "" : ";" + sub))
    }

    /// "relative folder=mtime;…" of every folder under `root`, sorted. Folders are told apart by readdir's type (no
    /// stat per chunk file). Chunk keys are equally deep, so once a folder holding chunk files is found, the other
    /// folders at its depth are only stat'ed, not listed: the cost is the interior folders' entries, not the chunks'.
    static func subfolderTimes(_ root: String) -> String {
        var parts: [String] = [], stack = [(root, 0)]
        var leafDepth: Int?
        while let (dir, depth) = stack.popLast() {
            if depth > 0 {
                var st = stat()
                guard stat(dir, &st) == 0 else { continue }
                parts.append("\(dir.dropFirst(root.count))=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
            }
            if depth == leafDepth { continue }
            guard let d = opendir(dir) else { continue }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name == "." || name == ".." { continue }
                let child = dir + "/" + name
                var type = e.pointee.d_type
                if type == UInt8(DT_UNKNOWN) {
                    var cs = stat()
                    type = stat(child, &cs) == 0 && (cs.st_mode & S_IFMT) == S_IFDIR ? UInt8(DT_DIR) : UInt8(DT_REG)
                }
                if type == UInt8(DT_DIR) { stack.append((child, depth + 1)) }
                else if leafDepth == nil, !name.hasPrefix("."), name != "zarr.json" { leafDepth = depth }   // a chunk file
            }
        }
        return parts.sorted().joined(separator: ";")
    }

    /// cleanup --3d's version of a group of slices: the predicted slices' versions, and the group itself (so that
    /// `status` recomputes it from the marker alone).
    public func groupVersion(_ zs: [Int]) -> String {
        let v = predictedSliceVersions()
        return fnv(zs.map { "\($0)=\(v[$0] ?? "none")" }.joined(separator: ";")) + "@" + Run.ranges(zs)
    }

    /// "0-3,7,9-10" (or with another separator and dash, for people: "0–3, 7, 9–10").
    public static func ranges(_ zs: [Int], separator: String = ",", dash: String = "-") -> String {
        var parts: [String] = [], i = 0
        let s = zs.sorted()
        while i < s.count {
            var j = i
            while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
            parts.append(i == j ? "\(s[i])" : "\(s[i])\(dash)\(s[j])"); i = j + 1
        }
        return parts.joined(separator: separator)
    }

    static func parseRanges(_ r: Substring) -> [Int] {
        r.split(separator: ",").flatMap { part -> [Int] in
            let b = part.split(separator: "-").compactMap { Int($0) }
            return b.count == 2 ? Array(b[0]...b[1]) : b
        }
    }

    /// Per predicted slice: predict's generation and a digest of its finished blocks (slices without any are absent).
    /// `blocks`: `predictedBlocks()` if the caller has just read it (the done markers are not read twice).
    public func predictedSliceVersions(_ blocks: [Int: [Int]]? = nil) -> [Int: String] {
        guard let p = manifest.steps["predict"] else { return [:] }
        return (blocks ?? predictedBlocks()).mapValues { ids in "p\(p.generation)." + fnv(ids.sorted().map(String.init).joined(separator: ",")) + ".\(ids.count)" }
    }

    /// predict's finished block ids per slice (slices without one are absent).
    public func predictedBlocks() -> [Int: [Int]] {
        guard let p = manifest.steps["predict"] else { return [:] }
        let done = DoneMarkers.read(directory: root + "/" + p.directory).keys.compactMap { Int($0) }
        guard !done.isEmpty, let perSlice = blocksPerSlice() else { return [:] }
        var bySlice: [Int: [Int]] = [:]
        for id in done { bySlice[id / perSlice, default: []].append(id) }
        return bySlice
    }

    /// Slices with some but not all of their blocks predicted, ascending (`counts`: blocks done per slice), and how
    /// status and cleanup name them: "slice 3 (5/12 blocks), …".
    public static func partlyPredicted(_ counts: [Int: Int], perSlice: Int) -> (slices: [Int], description: String) {
        let slices = counts.filter { $0.value < perSlice }.keys.sorted()
        return (slices, slices.map { "slice \($0) (\(counts[$0]!)/\(perSlice) blocks)" }.joined(separator: ", "))
    }

    /// Blocks per slice of predict's grid: recorded by predict, else from the labels array's chunking.
    public func blocksPerSlice() -> Int? {
        if let s = manifest.steps["predict"]?.info["blocks_per_slice"], let n = Int(s), n > 0 { return n }
        for name in manifest.steps["predict"]?.outputs ?? ["labels"] {
            guard let b = try? FileChunkStore(root: root).getSync(name + "/.zarray"),
                  let md = try? ArrayMetadata.zarrV2(json: b, path: root + "/" + name) else { continue }
            let n = md.shape.count, cy = md.chunks[n - 2], cx = md.chunks[n - 1]
            return ((md.shape[n - 2] + cy - 1) / cy) * ((md.shape[n - 1] + cx - 1) / cx)
        }
        return nil
    }
}

/// FNV-1a 64, hex: a short digest for version strings (not a security hash).
func fnv(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
    return String(h, radix: 16)
}

extension Run {
    /// Units done in a step's current generation (any shard), with their recorded input versions.
    public func done(step: String) -> [String: String] {
        guard let s = manifest.steps[step] else { return [:] }
        return DoneMarkers.read(directory: root + "/" + s.directory)
    }
}
