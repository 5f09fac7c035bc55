import Foundation

/// What `brainmap status` shows: per step its generation, parameters, inputs (recorded vs now), units done per
/// shard, whether it is stale; per array the generation in place and any staged one; what to run next.
public struct RunStatus: Sendable {
    public struct Input: Sendable { public var descriptor: String, recorded: String, current: String; public var stale: Bool { recorded != current } }
    public struct Step: Sendable {
        public var name: String, command: String, generation: Int, complete: Bool
        public var parameters: [String: String]
        public var inputs: [Input]
        /// Units (blocks, slices; factorize and cluster: passes) done per shard file (`reduce`: the merged passes).
        public var donePerShard: [String: Int]
        /// The unit each shard file recorded last: for a map/reduce step, the pass each map task and the reduce reached.
        public var lastPerShard: [String: String]
        /// Units done from an input version that has changed since (cleanup's slices).
        public var staleUnits: [String]
        /// Stale: an input changed (or a step it reads is stale itself).
        public var stale: Bool
        public var commandLine: String?
        /// Map/reduce steps: the map tasks (`shard-I-of-N`, N as recorded) with no done marker in this generation.
        public var missingShards: [String] = []
    }
    public struct Array: Sendable {
        public var name: String, step: String, generation: Int, staging: Int?, swapPending: Bool
        /// Pyramid levels (nil: a single array an older brainmap wrote; `brainmap pyramid` adds them).
        public var levels: Int?
    }

    public var root: String
    public var steps: [Step] = []
    public var arrays: [Array] = []
    /// Per slice with any predicted block: blocks done, of `blocksPerSlice`.
    public var predictedBlocks: [Int: Int] = [:]
    public var blocksPerSlice: Int?
    public var next: [String] = []

    public static func of(_ run: Run) throws -> RunStatus {
        let m = run.manifest
        var st = RunStatus(root: run.root)
        st.blocksPerSlice = run.blocksPerSlice()
        let blocks = run.predictedBlocks()
        st.predictedBlocks = blocks.mapValues(\.count)
        let sliceVersions = run.predictedSliceVersions(blocks)
        var staleSteps = Set<String>()
        // Steps in dependency order: predict first, then those whose inputs are already placed.
        let order = m.steps.keys.sorted { a, b in (rank(a), a) < (rank(b), b) }
        for name in order {
            let r = m.steps[name]!
            let dir = run.root + "/" + r.directory
            let perShard = DoneMarkers.readPerShard(directory: dir).mapValues(\.count)
            let inputs = r.inputs.keys.sorted().map { Input(descriptor: $0, recorded: r.inputs[$0]!, current: run.version(of: $0)) }
            var staleUnits: [String] = []
            if name == "cleanup" {
                let done = DoneMarkers.read(directory: dir)
                if r.parameters["mode"] == "3d" {
                    // Each marker names its group: the version is recomputed over that group's slices.
                    staleUnits = done.filter { unit, v in
                        guard let at = v.firstIndex(of: "@") else { return true }
                        return v != run.groupVersion(Run.parseRanges(v[v.index(after: at)...]))
                    }.keys.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
                } else {
                    staleUnits = done.filter { $0.value != (sliceVersions[Int($0.key) ?? -1] ?? "none") }.keys.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
                }
            }
            // A step run as map tasks and reduces (recorded since the first task; older runs: a reduce's marker).
            let passes = r.info["passes"] != nil || DoneMarkers.lastPerShard(directory: dir)["reduce"] != nil
            let shards = Int(r.info["shards"] ?? "1") ?? 1
            let missing = passes && !r.complete ? (0..<shards).map { Shard.fileTag($0, of: shards) }.filter { perShard[$0] == nil } : []
            let upstream = r.inputs.keys.contains { $0.hasPrefix("step:") && staleSteps.contains(String($0.dropFirst(5))) }
            let stale = inputs.contains(where: \.stale) || !staleUnits.isEmpty || upstream
            if stale { staleSteps.insert(name) }
            let partial = name == "predict" ? st.partlyPredicted.slices : []
            st.steps.append(Step(name: name, command: r.command, generation: r.generation, complete: name == "predict" ? partial.isEmpty : r.complete,
                                 parameters: r.parameters, inputs: inputs, donePerShard: perShard,
                                 lastPerShard: name == "predict" || name == "cleanup" ? [:] : DoneMarkers.lastPerShard(directory: dir), staleUnits: staleUnits, stale: stale,
                                 commandLine: r.commandLine(at: run.root), missingShards: missing))
            if stale || (!r.complete && name != "predict") || !partial.isEmpty {
                let why = stale ? (upstream ? "reads a stale step" : !staleUnits.isEmpty ? "slices \(staleUnits.joined(separator: ",")) changed since they were cleaned" : "its inputs changed")
                    : !partial.isEmpty ? "slices \(partial.map(String.init).joined(separator: ",")) are partly predicted" : "it did not finish, or is running"
                let cmd = r.commandLine(at: run.root)
                let how = !passes ? " (in \(shards) shards: --shard I/\(shards))"
                    : " (as map tasks and reduces: --pass map --shard I/\(shards) for each I, then --pass reduce/\(shards), until complete; or submit.sh again)"
                st.next.append("\(name) (\(why)): " + (cmd.map { "run again: \($0)" } ?? "run brainmap \(r.command) again with the same parameters")
                               + (shards > 1 || passes ? how : ""))
            }
        }
        st.arrays = m.arrays.keys.sorted().map { n in
            let a = m.arrays[n]!
            return Array(name: n, step: a.step, generation: a.generation, staging: a.staging, swapPending: a.stagingReady, levels: a.levels)
        }
        return st
    }

    /// Predicted slices that lack blocks (predict is complete when there are none).
    public var partlyPredicted: (slices: [Int], description: String) { Run.partlyPredicted(predictedBlocks, perSlice: blocksPerSlice ?? 0) }

    static func rank(_ step: String) -> Int {
        ["predict": 0, "cleanup": 1, "pca": 2, "nmf": 2, "clusters": 3, "select-factors": 3][step] ?? (step.hasPrefix("evaluate") ? 4 : 5)
    }
}
