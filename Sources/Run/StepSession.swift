import Foundation
import VolumeStore

/// What a step does when the saved generation was made with other parameters.
public enum ChangePolicy: Sendable {
    /// Refuse, naming each difference, with a hint (predict: days of work are not thrown away silently).
    case refuse(hint: String)
    /// Start a new generation that replaces the step's arrays whole when it finishes (cleanup, analysis).
    case replace
}

extension Run {
    /// Starts or resumes a step: the saved generation is resumed when its parameters and inputs equal these;
    /// otherwise (or with `restart`) a new generation begins — its own directory for done markers and state, its
    /// arrays staged until `finish` — and `notes` says why. Inputs are descriptors (`predict@all`, `step:pca`,
    /// `source:PATH`) with their current versions (`version(of:)`).
    public func begin(step: String, command: String, parameters: Parameters, inputs: [String: String], outputs: [String],
                      shard: Shard = .all, restart: Bool = false, policy: ChangePolicy = .replace,
                      info: [String: String] = [:]) throws -> StepSession {
        var notes: [String] = []
        var dropped: String?
        // The command as typed, for `status` to say what to run again.
        var info = info
        info["command_line"] = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let record: StepRecord = try update { m in
            let existing = m.steps[step]
            var bump = existing == nil
            if let e = existing {
                let paramDiffs = parameters.differences(from: e.parameters)
                let inputDiffs = Set(e.inputs.keys).union(inputs.keys).sorted().compactMap { k -> String? in
                    e.inputs[k] == inputs[k] ? nil : "\(Run.describe(k)): computed from \(e.inputs[k] ?? "(nothing)"), now \(inputs[k] ?? "(not an input)")"
                }
                if restart {
                    // Shards started together with --restart: the first starts the generation, the others join it.
                    if e.freshRestart && !e.complete && (isUntouched(root + "/" + e.directory) || Date().timeIntervalSince1970 - e.started < 60) { bump = false }
                    else { bump = true; notes.append("--restart: \(step) starts over") }
                } else if !paramDiffs.isEmpty {
                    if case let .refuse(hint) = policy { throw RunError.mismatch(run: root, step: step, differences: paramDiffs, hint: hint) }
                    bump = true
                    notes.append("\(step) was computed with other parameters (" + paramDiffs.joined(separator: "; ") + "): recomputing it from scratch")
                } else if !inputDiffs.isEmpty {
                    bump = true
                    notes.append("the inputs of \(step) changed since it was computed (" + inputDiffs.joined(separator: "; ") + "): recomputing it from scratch")
                }
            }
            if bump {
                let g = (existing?.generation ?? 0) + 1
                if let e = existing, e.directory != ".brainmap/\(step)-g\(g)" { dropped = e.directory }
                m.steps[step] = StepRecord(command: command, parameters: parameters.dictionary, generation: g, inputs: inputs,
                                           outputs: outputs, directory: ".brainmap/\(step)-g\(g)", info: info, complete: false,
                                           freshRestart: restart, updated: isoNow())
            } else {
                m.steps[step]!.info.merge(info) { _, b in b }
            }
            if step == "predict" { m.identity = parameters.dictionary }
            return m.steps[step]!
        }
        // The superseded generation's markers and state: no longer referenced, removed whole.
        if let d = dropped, d != "journal" || step == "predict" { try? DurableFile.removeTree(root + "/" + d, trash: trash) }
        try? FileManager.default.removeItem(atPath: trash)
        let dir = root + "/" + record.directory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return StepSession(run: self, step: step, generation: record.generation, directory: dir, shard: shard, notes: notes)
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
    private var markers: DoneMarkers?
    private let markersLock = NSLock()

    init(run: Run, step: String, generation: Int, directory: String, shard: Shard, notes: [String]) {
        self.run = run; self.step = step; self.generation = generation; self.directory = directory; self.shard = shard; self.notes = notes
    }

    /// Every unit any shard of this generation finished, with the input version it was computed from.
    public func done() -> [String: String] { DoneMarkers.read(directory: directory) }

    public func markDone(_ unit: String, version: String = "") throws {
        let m = try markersLock.withLock {
            if markers == nil { markers = try DoneMarkers(directory: directory, shard: shard) }
            return markers!
        }
        try m.markDone(unit, version: version)
    }

    /// A state file of this generation (e.g. `pca.state.json`).
    public func statePath(_ name: String) -> String { directory + "/" + name }

    /// Whether this generation already finished (every shard's part, arrays in place).
    public var isComplete: Bool { run.manifest.steps[step]?.complete ?? false }

    /// The step's output array `name` for this generation. `staged`: a generation that replaces an existing array
    /// writes under `.brainmap/staging/` until `finish` swaps it in whole; once in place, later runs of the same
    /// generation (resumes, stale slices) write in place. Unstaged (predict) arrays are created in place. An array
    /// found with other metadata than this generation writes is never mixed with it: in place it is an error, staged
    /// it is recreated.
    public func array(_ name: String, metadata md: ArrayMetadata, dimensions: [String], labelMap: Bool, staged: Bool = true) async throws -> ZarrArray {
        let store = FileChunkStore(root: run.root, durable: true)
        let want = md.zarrV2JSON()
        let path: String = try run.update { m in
            var rec = m.arrays[name] ?? ArrayRecord(step: step, generation: 0, dimensions: dimensions, labelMap: labelMap)
            rec.dimensions = dimensions; rec.labelMap = labelMap
            if rec.generation == generation && rec.step == step {
                m.arrays[name] = rec
                return name
            }
            if !staged {
                rec.step = step; rec.generation = generation
                m.arrays[name] = rec
                return name
            }
            rec.step = step; rec.staging = generation; rec.stagingReady = false
            m.arrays[name] = rec
            return run.stagingPath(name, generation)
        }
        if let old = try store.getSync(path + "/.zarray") {
            if old == want { return ZarrArray(store: store, path: path, metadata: md) }
            if path != name {
                // A staged leftover of another attempt with other metadata: start it again.
                try DurableFile.removeTree(run.root + "/" + path, trash: run.trash)
                return try await create(store, path, md, dimensions)
            }
            throw RunError.input("\(run.root)/\(name)/.zarray differs from what this \(step) writes (another block size, dtype or shape?); "
                                 + "re-run with the parameters the run was made with, or start over with --restart")
        }
        return try await create(store, path, md, dimensions)
    }

    private func create(_ store: FileChunkStore, _ path: String, _ md: ArrayMetadata, _ dims: [String]) async throws -> ZarrArray {
        try store.putSync(path + "/.zattrs", jsonBytes(["_ARRAY_DIMENSIONS": dims]))
        try store.putSync(path + "/.zarray", md.zarrV2JSON())
        return ZarrArray(store: store, path: path, metadata: md)
    }

    /// This generation is complete: staged arrays move into place (atomically per array; a crash midway is finished
    /// by the next process that opens the run) and the step is recorded complete.
    public func finish(arrays: [String]) throws {
        try run.update { m in
            for name in arrays { try run.swapIn(name, generation: generation, &m) }
            if m.steps[step]?.generation == generation { m.steps[step]!.complete = true; m.steps[step]!.freshRestart = false; m.steps[step]!.updated = isoNow() }
        }
    }
}
