import Foundation

/// `RUN/run.json`: what a run holds and how each part was made — the one record every step reads and updates
/// (under the run's lock). Group attributes (OME `multiscales`) are derived from it, so adding an array never
/// touches another step's record.
public struct RunManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 2
    public var formatVersion = RunManifest.currentFormat
    /// predict's parameters, also kept here (format 1's place) for tools that read `identity.stride`.
    public var identity: [String: String] = [:]
    /// Steps by name (`predict`, `cleanup`, `pca`, `nmf`, `clusters`, `select-factors`, `evaluate-labels`…).
    public var steps: [String: StepRecord] = [:]
    /// Arrays of the group by name (the Zarr array at `RUN/name`).
    public var arrays: [String: ArrayRecord] = [:]

    enum CodingKeys: String, CodingKey { case formatVersion = "format_version", identity, steps, arrays }

    public init() {}

    /// The output stride of the run (predict's `stride`; 1 when absent).
    public var stride: Int { Int(identity["stride"] ?? steps["predict"]?.parameters["stride"] ?? "1") ?? 1 }
}

/// One step of a run: its parameters, what it read (input descriptor → version), and where its done markers and
/// intermediate state live. A new generation starts when parameters or inputs change (or on --restart); a
/// generation's directory holds everything of it, so the old one is dropped as a whole.
public struct StepRecord: Codable, Sendable, Equatable {
    public var command: String
    public var parameters: [String: String]
    public var generation: Int
    /// Input descriptor (`predict@all`, `predict@3,4`, `step:pca`, `source:PATH`) → its version when this generation began.
    public var inputs: [String: String]
    public var outputs: [String]
    /// Done markers, shard exchange and saved state of this generation, relative to the run.
    public var directory: String
    /// Free-form facts for people and the report: model path, versions, command line, block grid.
    public var info: [String: String]
    /// A whole-result step (factorize, cluster) finished and swapped its arrays into place.
    public var complete: Bool
    /// Started by --restart and nothing done yet: other shards given --restart join it instead of restarting again.
    public var freshRestart: Bool
    public var updated: String
    /// When this generation began (seconds since 1970): shards given --restart within a minute of each other join it.
    public var started: Double = Date().timeIntervalSince1970

    enum CodingKeys: String, CodingKey {
        case command, parameters, generation, inputs, outputs, directory, info, complete, updated, started
        case freshRestart = "fresh_restart"
    }

    /// The command as it was typed, pointed at the run at `root` (it may have been copied or moved since): what to
    /// run again, in advice and messages.
    /// nil when another command ran the step (the demo runs every step in one process: its line is not this step's).
    public func commandLine(at root: String) -> String? {
        guard let line = info["command_line"] else { return nil }
        let words = line.split(separator: " ")
        guard words.count > 1, words[1] == command else { return nil }
        guard let was = info["run_path"], was != root else { return line }
        // Lines recorded before paths were made absolute hold the run as typed; either way it becomes `root`.
        return words.map { $0 == was || Run.canonicalSource(String($0)) == was ? root : String($0) }.joined(separator: " ")
    }
}

/// An array of the run and the generation of the step whose data it holds. A generation that replaces an array is
/// written under `.brainmap/staging/NAME-gG` and swapped into place whole (`stagingReady` marks a swap to finish
/// after a crash), so old chunks are never read with new metadata.
public struct ArrayRecord: Codable, Sendable, Equatable {
    public var step: String
    /// Generation of the data at RUN/NAME (0: nothing there yet).
    public var generation: Int
    public var staging: Int?
    public var stagingReady: Bool
    /// Axis names, channel first when there is one (OME-Zarr order).
    public var dimensions: [String]
    /// An integer label map (labels, labels_clean, clusters) rather than an intensity image.
    public var labelMap: Bool
    /// Layout of the data at RUN/NAME: nil — one Zarr array there (what brainmap wrote before pyramids, read as it
    /// is); n — an OME-Zarr image group with levels RUN/NAME/0 … n−1 (`Pyramid`: ×2 in y and x until a level fits in
    /// one chunk). `stagingLevels`: the same for the staged generation, taken over when it is swapped in.
    public var levels: Int?
    public var stagingLevels: Int?

    enum CodingKeys: String, CodingKey {
        case step, generation, staging, dimensions, levels
        case stagingReady = "staging_ready", labelMap = "label_map", stagingLevels = "staging_levels"
    }

    /// Where level k of the data is, relative to the array's directory ("" for a single-array layout).
    public func level(_ k: Int, staged: Bool = false) -> String { (staged ? stagingLevels : levels) == nil ? "" : "/\(k)" }

    public init(step: String, generation: Int, dimensions: [String], labelMap: Bool) {
        self.step = step; self.generation = generation; self.dimensions = dimensions; self.labelMap = labelMap
        staging = nil; stagingReady = false; levels = nil; stagingLevels = nil
    }
}

/// A step's parameters in a fixed order, and the differences from a recorded set, each named.
public struct Parameters: Sendable {
    public var fields: [(String, String)]
    public init(_ fields: [(String, String)]) { self.fields = fields }
    public var dictionary: [String: String] { Dictionary(fields, uniquingKeysWith: { _, b in b }) }

    /// "k: the run has 15, this command has 5" for every field that differs (absent fields named as such).
    public func differences(from recorded: [String: String]) -> [String] {
        var out: [String] = []
        for (k, v) in fields where recorded[k] != v {
            out.append("\(k): the run has \(recorded[k] ?? "(absent)"), this command has \(v)")
        }
        let mine = Set(fields.map(\.0))
        for k in recorded.keys.sorted() where !mine.contains(k) { out.append("\(k): the run has \(recorded[k]!), this command has (absent)") }
        return out
    }
}

func isoNow() -> String { ISO8601DateFormatter().string(from: Date()) }
