import Foundation
#if canImport(VolumeStore)
import VolumeStore   // (absent in the fuzz build, which compiles VolumeStore and Run as one module)
#endif

/// What a step does when the saved generation was made with other parameters.
public enum ChangePolicy: Sendable {
    /// Refuse, naming each difference, with a hint (predict: days of work are not thrown away silently).
    case refuse(hint: String)
    /// Start a new generation that replaces the step's arrays whole when it finishes (cleanup, analysis).
    case replace
}

extension Run {
    /// How a command's parameters and inputs differ from a step's saved generation, each difference in words: what
    /// decides whether `begin` resumes the generation or starts another.
    static func differences(of e: StepRecord, parameters: Parameters, inputs: [String: String]) -> (parameters: [String], inputs: [String]) {
        let inputDiffs = Set(e.inputs.keys).union(inputs.keys).sorted().compactMap { k -> String? in
            e.inputs[k] == inputs[k] ? nil : "\(Run.describe(k)): computed from \(e.inputs[k] ?? "(nothing)"), now \(inputs[k] ?? "(not an input)")"
        }
        return (parameters.differences(from: e.parameters), inputDiffs)
    }

    /// Whether `begin` with these arguments would start a new generation of `step` (rather than resume it or find it
    /// up to date): what a command checks before it begins, e.g. that it has pixels to work on. A reduce never starts
    /// one; a --restart does (or joins one other shards just started: checking then costs nothing).
    public func wouldStartGeneration(_ step: String, parameters: Parameters, inputs: [String: String], restart: Bool, pass: PassMode?) -> Bool {
        if case .reduce = pass { return false }
        guard let e = manifest.steps[step], !restart else { return true }
        let d = Run.differences(of: e, parameters: parameters, inputs: inputs)
        return !(d.parameters.isEmpty && d.inputs.isEmpty)
    }

    /// Starts or resumes a step: the saved generation is resumed when its parameters and inputs equal these;
    /// otherwise (or with `restart`) a new generation begins — its own directory for done markers and state, its
    /// arrays staged until `finish` — and `notes` says why. Inputs are descriptors (`predict@all`, `step:pca`,
    /// `source:PATH`) with their current versions (`version(of:)`).
    /// `pass`: a map task or reduce (StepPasses). Neither ever replaces a generation whose passes are under way (its
    /// other tasks would publish into, or merge, the wrong generation) nor starts one it cannot finish: a reduce only
    /// joins the generation its map tasks began. Both are refused before the manifest changes.
    public func begin(step: String, command: String, parameters: Parameters, inputs: [String: String], outputs: [String],
                      shard: Shard = .all, restart: Bool = false, policy: ChangePolicy = .replace,
                      info: [String: String] = [:], pass: PassMode? = nil) throws -> StepSession {
        var notes: [String] = []
        var dropped: [String] = []
        var info = info
        // What to run again, for `status`: the command as typed, without this process's shard or --restart.
        let line = Run.commandLine(CommandLine.arguments, run: root)
        info["command_line"] = line
        // The map tasks' count: a reduce's own shard is not it (and its N may be wrong: it is checked, not recorded).
        if case .reduce = pass {} else { info["shards"] = info["shards"] ?? "\(shard.count)" }
        if pass != nil { info["passes"] = "map-reduce" }
        info["run_path"] = Run.canonicalSource(root)
        let lock = try StepLock(stateDirectory + "/\(step).lock")
        var others: [StepLock] = []
        let record: StepRecord = try update { m in
            let existing = m.steps[step]
            var bump = existing == nil
            if existing == nil, case .reduce = pass {
                throw RunError.input("\(step) of \(root) has no map task's statistics to merge: no map task has run. "
                                     + "Run the map tasks of its first pass first (\(line) --pass map --shard I/N for each I), then this reduce")
            }
            if let e = existing {
                let (paramDiffs, inputDiffs) = Run.differences(of: e, parameters: parameters, inputs: inputs)
                let same = paramDiffs.isEmpty && inputDiffs.isEmpty
                if let pass, !same, !restart {
                    try refusePassTask(pass, step: step, e, differences: paramDiffs + inputDiffs, inputsOnly: paramDiffs.isEmpty, line: line)
                }
                // Other processes working on this step (they hold its lock shared) are never cut off: a command that
                // would start another generation under them is refused. Shards of one command join instead.
                let busy = !lock.tryExclusive()
                func refuseUnderRunningShards(_ why: [String]) throws {
                    guard busy else { return }
                    throw RunError.shards("another brainmap \(e.command) is working on \(step) of \(root) right now (generation \(e.generation))"
                        + (why.isEmpty ? "" : ", with other parameters or inputs than this command:\n  " + why.joined(separator: "\n  "))
                        + "\nStart every shard with the same command, or wait for it or stop it first (its finished work is kept until a new generation replaces it)")
                }
                if restart {
                    // Shards started together with --restart: the first starts the generation, the others join it.
                    if same && shard.count > 1 && !e.complete
                        && (busy || (e.freshRestart && (isUntouched(root + "/" + e.directory) || Date().timeIntervalSince1970 - e.started < 60))) {
                        notes.append("--restart: joining generation \(e.generation) of \(step), which other shards started")
                    } else {
                        try refuseUnderRunningShards(paramDiffs + inputDiffs)
                        bump = true; notes.append("--restart: \(step) starts over")
                    }
                } else if !paramDiffs.isEmpty {
                    if case let .refuse(hint) = policy { throw RunError.mismatch(run: root, step: step, differences: paramDiffs, hint: hint) }
                    try refuseUnderRunningShards(paramDiffs)
                    bump = true
                    notes.append("\(step) was computed with other parameters (" + paramDiffs.joined(separator: "; ") + "): recomputing it from scratch")
                } else if !inputDiffs.isEmpty {
                    try refuseUnderRunningShards(inputDiffs)
                    bump = true
                    notes.append("the inputs of \(step) changed since it was computed (" + inputDiffs.joined(separator: "; ") + "): recomputing it from scratch")
                }
            }
            if bump {
                let g = (existing?.generation ?? 0) + 1
                if step == "predict" && restart {
                    // predict --restart: the whole run goes (every other step read it), moved aside under the lock —
                    // refused while any other command works on the run.
                    let names = ((try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []).filter { $0.hasSuffix(".lock") && $0 != "predict.lock" }
                    for n in names.sorted() {
                        let l = try StepLock(stateDirectory + "/" + n)
                        guard l.tryExclusive() else {
                            throw RunError.shards("--restart: a brainmap command is working on \(n.dropLast(5)) of \(root) right now; stop it first, then restart")
                        }
                        others.append(l)
                    }
                    let gone = m.steps.keys.filter { $0 != "predict" }.sorted()
                    try discardEverything()
                    m = RunManifest()
                    if !gone.isEmpty { notes.append("--restart: discarded every result computed from the old predictions too: " + gone.joined(separator: ", ")) }
                } else if let e = existing {
                    dropped.append(root + "/" + e.directory)
                }
                // Staged copies of superseded generations of this step's arrays.
                for o in outputs {
                    if let old = m.arrays[o]?.staging, old != g { dropped.append(root + "/" + stagingPath(o, old)); m.arrays[o]!.staging = nil; m.arrays[o]!.stagingReady = false; m.arrays[o]!.stagingLevels = nil }
                }
                m.steps[step] = StepRecord(command: command, parameters: parameters.dictionary, generation: g, inputs: inputs,
                                           outputs: outputs, directory: ".brainmap/\(step)-g\(g)", info: info, complete: false,
                                           freshRestart: restart, updated: isoNow())
            } else {
                m.steps[step]!.info.merge(info) { _, b in b }
            }
            if step == "predict" { m.identity = parameters.dictionary }
            return m.steps[step]!
        }
        // From here on this process works on the step: shared, so that its shards can join.
        try lock.shared()
        others.forEach { $0.unlock() }
        // The superseded generation's markers, state and staged arrays: no longer referenced, removed whole (staged
        // copies of older generations a kill left behind too).
        for o in outputs {
            for e in (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory + "/staging")) ?? [] where e.hasPrefix(o + "-g") {
                if let g = Int(e.dropFirst(o.count + 2)), g < record.generation { dropped.append(stateDirectory + "/staging/" + e) }
            }
        }
        for d in dropped { try? DurableFile.removeTree(d, trash: trash) }
        emptyTrash()
        let dir = root + "/" + record.directory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let session = StepSession(run: self, step: step, generation: record.generation, directory: dir, shard: shard, notes: notes)
        session.lock = lock
        session.commandLine = record.commandLine(at: root) ?? line
        return session
    }

    /// The command line as `status` shows it: quoted where needed, without `--shard …`, `--pass …` and `--restart`
    /// (so the map tasks and reduces of one step record the same line, and leave the manifest unchanged).
    /// Paths are made absolute (a path that exists, with a / or an extension): `status` may run from another
    /// directory, where `--rois ph.zarr/layers` would name nothing.
    static func commandLine(_ args: [String], run: String? = nil) -> String {
        var out: [String] = [], skip = false
        for a in args {
            if skip { skip = false; continue }
            if a == "--restart" || a.hasPrefix("--shard=") || a.hasPrefix("--pass=") { continue }
            if a == "--shard" || a == "--pass" { skip = true; continue }
            // The run itself is made absolute whatever its name looks like (`myrun` has no / or dot).
            let word = out.isEmpty ? a : a == run ? canonicalSource(a) : absoluteIfPath(a)
            out.append(word.contains(" ") ? "'\(word)'" : word)
        }
        if let first = out.first, first.hasSuffix("/brainmap") || first == "brainmap" { out[0] = "brainmap" }
        return out.joined(separator: " ")
    }

    /// `a` made absolute when it is a relative path that exists (with a / or a dot, so that a value such as "3" is
    /// never mistaken for a file named 3); `--flag=path` likewise.
    static func absoluteIfPath(_ a: String) -> String {
        if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
            return String(a[...eq]) + absoluteIfPath(String(a[a.index(after: eq)...]))
        }
        guard !a.hasPrefix("-"), !a.hasPrefix("/"), !a.contains("://"), a.contains("/") || a.contains("."),
              FileManager.default.fileExists(atPath: a) else { return a }
        return canonicalSource(a)
    }

    /// A map task or reduce whose parameters or inputs differ from the step's generation `e`: a reduce never starts a
    /// generation (no map task published into it); a map task starts one when `e` is complete or untouched — the lock
    /// cannot tell, since the other tasks of a pass under way have exited — or when only its inputs changed (predict
    /// added blocks): then every task of the step, whatever its pass, would find the same, and `e` could only finish
    /// stale. (Tasks still running hold the step's lock; the new generation is refused under them.)
    private func refusePassTask(_ pass: PassMode, step: String, _ e: StepRecord, differences: [String], inputsOnly: Bool, line: String) throws {
        let underWay = !e.complete && !isUntouched(root + "/" + e.directory)
        guard pass != .map || (underWay && !inputsOnly) else { return }
        let own = e.commandLine(at: root).map { "\($0) --pass map --shard I/N for each I, then --pass reduce/N" }
        if inputsOnly {   // a reduce, after the inputs changed under the generation
            throw RunError.mismatch(run: root, step: step, differences: differences, hint:
                "The inputs changed since generation \(e.generation) began, so its map tasks must run again: the first starts generation "
                + "\(e.generation + 1) over the new inputs (\(line) --pass map --shard I/N for each I), then this reduce. A Slurm plan: submit.sh again")
        }
        throw RunError.mismatch(run: root, step: step, differences: differences, hint: underWay
            ? "Its generation \(e.generation) is under way as map tasks and reduces; a --pass task never replaces it. "
                + "Finish it with its own command" + (own.map { " (\($0))" } ?? "") + ", after which map tasks with other parameters start "
                + "a new generation; or start over now with these parameters in one process: \(line) --restart (without --pass)"
            : "A reduce merges what the map tasks of the step's generation published; none ran with these parameters. "
                + "Run them first (\(line) --pass map --shard I/N for each I), then this reduce")
    }

    /// Nothing recorded yet in a generation's directory (no marker lines, no state, no published statistics).
    private func isUntouched(_ dir: String) -> Bool {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return true }
        for case let f as String in e where !f.contains("heartbeat") {
            if let a = try? FileManager.default.attributesOfItem(atPath: dir + "/" + f), a[.type] as? FileAttributeType == .typeRegular,
               (a[.size] as? Int ?? 0) > 0 { return false }
        }
        return true
    }
}

/// One process's part in one generation of a step: its done markers, its state files, its arrays.
public final class StepSession: @unchecked Sendable {
    public let run: Run
    public let step: String
    public let generation: Int
    /// The generation's directory (absolute): done markers, exchange and state files live here.
    public let directory: String
    public let shard: Shard
    /// Why this generation started (parameters or inputs changed, --restart); empty when resuming.
    public let notes: [String]
    /// The step's command line as recorded (`status` shows it): what to run again, in messages.
    public internal(set) var commandLine = ""
    private var markers: DoneMarkers?
    /// Whose done markers this process appends to: its shard's (`shard-I-of-N`), or `reduce` (StepPasses).
    public var markerName: String
    private let markersLock = NSLock()
    private let pyramidsLock = NSLock()
    private var pyramids: [String: Pyramid?] = [:]
    /// The step's lock, held shared while this session lives (see StepLock).
    var lock: StepLock?

    init(run: Run, step: String, generation: Int, directory: String, shard: Shard, notes: [String]) {
        self.run = run; self.step = step; self.generation = generation; self.directory = directory; self.shard = shard; self.notes = notes
        markerName = shard.fileTag
    }

    /// Every unit any shard of this generation finished, with the input version it was computed from.
    public func done() -> [String: String] { DoneMarkers.read(directory: directory) }

    public func markDone(_ unit: String, version: String = "") throws {
        let m = try markersLock.withLock {
            if markers == nil { markers = try DoneMarkers(directory: directory, name: markerName) }
            return markers!
        }
        try m.markDone(unit, version: version)
    }

    /// A state file of this generation (e.g. `pca.state.json`).
    public func statePath(_ name: String) -> String { directory + "/" + name }

    /// Whether this generation already finished (every shard's part, arrays in place).
    public var isComplete: Bool { run.manifest.steps[step]?.complete ?? false }

    /// The step's output array `name` for this generation (its level 0). `staged`: a generation that replaces an
    /// existing array writes under `.brainmap/staging/` until `finish` swaps it in whole; once in place, later runs of
    /// the same generation (resumes, stale slices) write in place. Unstaged (predict) arrays are created in place. An
    /// array found with other metadata than this generation writes is never mixed with it: in place it is an error,
    /// staged it is recreated. A new array is an OME-Zarr image group (`RUN/NAME/0` and its pyramid levels, see
    /// `pyramid(_:)`); an array an older brainmap wrote as a single array is resumed as it is.
    public func array(_ name: String, metadata md: ArrayMetadata, dimensions: [String], labelMap: Bool, staged: Bool = true) async throws -> ZarrArray {
        let store = FileChunkStore(root: run.root, durable: true)
        let want = md.zarrV2JSON()
        let levels = Pyramid.levelMetadata(md)
        let (base, rec): (String, ArrayRecord) = try run.update { m in
            try checkCurrent(m)
            var rec = m.arrays[name] ?? ArrayRecord(step: step, generation: 0, dimensions: dimensions, labelMap: labelMap)
            rec.dimensions = dimensions; rec.labelMap = labelMap
            if rec.generation == generation && rec.step == step {
                m.arrays[name] = rec
                return (name, rec)
            }
            if !staged {
                rec.step = step; rec.generation = generation; rec.levels = levels.count
                m.arrays[name] = rec
                return (name, rec)
            }
            rec.step = step; rec.staging = generation; rec.stagingReady = false; rec.stagingLevels = levels.count
            m.arrays[name] = rec
            return (run.stagingPath(name, generation), rec)
        }
        let isStaged = base != name
        let layout = isStaged ? rec.stagingLevels : rec.levels
        let paths = (0..<(layout ?? 1)).map { base + rec.level($0, staged: isStaged) }
        pyramidsLock.withLock { pyramids[name] = layout.map { _ in
            Pyramid(store: store, levels: zip(paths, levels).map { ZarrArray(store: store, path: $0, metadata: $1) },
                    reduction: labelMap ? .mode : .mean)
        } }
        let path = paths[0]
        if let old = try store.getSync(path + "/.zarray") {
            if old == want { return ZarrArray(store: store, path: path, metadata: md) }
            if isStaged {
                // A staged leftover of another attempt with other metadata: start it again.
                try DurableFile.removeTree(run.root + "/" + base, trash: run.trash)
                return try await create(store, paths, levels, dimensions)
            }
            throw RunError.input("\(run.root)/\(path)/.zarray differs from what this \(step) writes (another block size, dtype or shape?); "
                                 + "re-run with the parameters the run was made with, or start over with --restart")
        }
        return try await create(store, paths, levels, dimensions)
    }

    /// The pyramid of output `name` as `array` opened it (nil: an older brainmap's single array, level 0 only).
    public func pyramid(_ name: String) -> Pyramid? { pyramidsLock.withLock { pyramids[name] ?? nil } }

    /// Level 0 last: its `.zarray` existing means every level's does.
    private func create(_ store: FileChunkStore, _ paths: [String], _ levels: [ArrayMetadata], _ dims: [String]) async throws -> ZarrArray {
        try Pyramid.createLevels(store: store, paths: paths, metadata: levels, dimensions: dims)
        try store.putSync(paths[0] + "/.zattrs", jsonBytes(["_ARRAY_DIMENSIONS": dims]))
        try store.putSync(paths[0] + "/.zarray", levels[0].zarrV2JSON())
        return ZarrArray(store: store, path: paths[0], metadata: levels[0])
    }

    /// This generation is complete: staged arrays move into place (atomically per array; a crash midway is finished
    /// by the next process that opens the run) and the step is recorded complete.
    /// `results` maps state files of this generation to where they are published (e.g. `RUN/analysis/pca.json`):
    /// they move into place with the arrays, so a result file always describes the arrays in place.
    public func finish(arrays: [String], results: [String: String] = [:]) throws {
        try run.update { m in
            try checkCurrent(m)
            for name in arrays { try run.swapIn(name, generation: generation, &m) }
            for (from, to) in results.sorted(by: { $0.key < $1.key }) {
                guard let bytes = FileManager.default.contents(atPath: from) else { continue }   // published by another shard
                try DurableFile.write(to, [UInt8](bytes))
            }
            m.steps[step]!.complete = true; m.steps[step]!.freshRestart = false; m.steps[step]!.updated = isoNow()
        }
    }

    /// Refuses to write or finish a generation another command has superseded (its directory is gone).
    private func checkCurrent(_ m: RunManifest) throws {
        guard let g = m.steps[step]?.generation, g == generation else {
            throw RunError.input("generation \(generation) of \(step) in \(run.root) was superseded by generation \(m.steps[step]?.generation ?? 0) "
                                 + "(another command started \(step) with other parameters or inputs); this process stops without putting anything in place")
        }
    }
}
