import Foundation

/// What `brainmap status` shows: per step its generation, parameters, inputs (recorded vs now), units done per
/// shard, whether it is stale; per array the generation in place and any staged one; what to run next.
public struct RunStatus: Sendable {
    public struct Input: Sendable { public var descriptor: String, recorded: String, current: String; public var stale: Bool { recorded != current } }
    public struct Step: Sendable {
        public var name: String, command: String, generation: Int, complete: Bool
        public var parameters: [String: String]
        public var inputs: [Input]
        /// Units (blocks, slices) done per shard file.
        public var donePerShard: [String: Int]
        /// Units done from an input version that has changed since (cleanup's slices).
        public var staleUnits: [String]
        /// Stale: an input changed (or a step it reads is stale itself).
        public var stale: Bool
        public var commandLine: String?
    }
    public struct Array: Sendable { public var name: String, step: String, generation: Int, staging: Int?, swapPending: Bool }

    public var root: String
    public var steps: [Step] = []
    public var arrays: [Array] = []
    /// Per slice with any predicted block: blocks done, of `blocksPerSlice`.
    public var predictedBlocks: [Int: Int] = [:]
    public var blocksPerSlice: Int?
    public var next: [String] = []

    public static func of(_ run: Run) throws -> RunStatus {
        try run.reload()
        let m = run.manifest
        var st = RunStatus(root: run.root)
        st.blocksPerSlice = run.blocksPerSlice()
        if let p = m.steps["predict"], let per = st.blocksPerSlice {
            for id in DoneMarkers.read(directory: run.root + "/" + p.directory).keys.compactMap({ Int($0) }) { st.predictedBlocks[id / per, default: 0] += 1 }
        }
        let sliceVersions = run.predictedSliceVersions()
        var staleSteps = Set<String>()
        // Steps in dependency order: predict first, then those whose inputs are already placed.
        let order = m.steps.keys.sorted { a, b in (rank(a), a) < (rank(b), b) }
        for name in order {
            let r = m.steps[name]!
            let dir = run.root + "/" + r.directory
            let perShard = DoneMarkers.readPerShard(directory: dir).mapValues(\.count)
            var inputs = r.inputs.keys.sorted().map { Input(descriptor: $0, recorded: r.inputs[$0]!, current: run.version(of: $0)) }
            if name == "cleanup" { inputs = [] }
            var staleUnits: [String] = []
            if name == "cleanup" {
                let done = DoneMarkers.read(directory: dir)
                if r.parameters["mode"] == "3d" {
                    let zs = done.keys.compactMap { Int($0) }.sorted()
                    let group = Run.digest(zs.map { "\($0)=\(sliceVersions[$0] ?? "none")" }.joined(separator: ";"))
                    staleUnits = done.filter { $0.value != group }.keys.sorted { Int($0)! < Int($1)! }
                } else {
                    staleUnits = done.filter { $0.value != (sliceVersions[Int($0.key) ?? -1] ?? "none") }.keys.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
                }
            }
            let upstream = r.inputs.keys.contains { $0.hasPrefix("step:") && staleSteps.contains(String($0.dropFirst(5))) }
            let stale = inputs.contains(where: \.stale) || !staleUnits.isEmpty || upstream
            if stale { staleSteps.insert(name) }
            st.steps.append(Step(name: name, command: r.command, generation: r.generation, complete: r.complete || name == "predict",
                                 parameters: r.parameters, inputs: inputs, donePerShard: perShard, staleUnits: staleUnits, stale: stale,
                                 commandLine: r.info["command_line"]))
            if stale || (!r.complete && name != "predict") {
                let why = stale ? (upstream ? "reads a stale step" : !staleUnits.isEmpty ? "slices \(staleUnits.joined(separator: ",")) were predicted again" : "its inputs changed")
                    : "it did not finish"
                st.next.append("\(name) (\(why)): " + (r.info["command_line"].map { "run again: \($0)" } ?? "run brainmap \(r.command) again with the same parameters"))
            }
        }
        st.arrays = m.arrays.keys.sorted().map { n in
            let a = m.arrays[n]!
            return Array(name: n, step: a.step, generation: a.generation, staging: a.staging, swapPending: a.stagingReady)
        }
        return st
    }

    static func rank(_ step: String) -> Int {
        ["predict": 0, "cleanup": 1, "pca": 2, "nmf": 2, "clusters": 3, "select-factors": 3][step] ?? (step.hasPrefix("evaluate") ? 4 : 5)
    }
}
