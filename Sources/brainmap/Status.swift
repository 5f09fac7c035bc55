import ArgumentParser
import Foundation
import Run

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What a run holds: each step's parameters, inputs and progress per shard, what is stale, what to run next.",
        discussion: """
        Reads RUN/run.json (the manifest every step records itself in) and the done markers under RUN/.brainmap. A step is
        stale when what it read has changed since (predict added or recomputed blocks of its slices, another factorisation,
        another mask): the next run of that step recomputes it (cleanup: just the changed slices).
        """)
    @Argument(help: "The run directory.") var run: String
    @Flag(help: "Print the status as JSON.") var json = false

    func run() async throws {
        let st = try RunStatus.of(try Run.inspect(run))
        if json { print(String(decoding: jsonBytesOf(st), as: UTF8.self)); return }
        print("run \(st.root)")
        if let per = st.blocksPerSlice, !st.predictedBlocks.isEmpty {
            let full = st.predictedBlocks.filter { $0.value >= per }.keys.sorted()
            let partial = st.partlyPredicted
            print("predicted slices: \(full.count) complete" + (full.isEmpty ? "" : " (\(Run.ranges(full, separator: ", ", dash: "–")))")
                  + (partial.slices.isEmpty ? "" : "; partly predicted: " + partial.description))
        }
        for s in st.steps {
            let state = s.stale ? "STALE" : s.name == "predict" ? (s.complete ? "slices complete" : "partial slices") : s.complete ? "up to date" : "incomplete"
            print("\n\(s.name)  [\(state)]  generation \(s.generation)  (brainmap \(s.command))")
            print("  parameters: " + s.parameters.keys.sorted().map { "\($0)=\(s.parameters[$0]!)" }.joined(separator: " "))
            for i in s.inputs {
                print("  input \(i.descriptor): " + (i.stale ? "changed (computed from \(i.recorded), now \(i.current))" : "unchanged (\(i.current))"))
            }
            if !s.donePerShard.isEmpty {
                print("  done: " + s.donePerShard.keys.sorted().map { k in
                    "\(k) \(s.donePerShard[k]!)" + (s.lastPerShard[k].map { " (last: \($0))" } ?? "")
                }.joined(separator: ", ") + (s.missingShards.isEmpty ? "" : "; missing: " + s.missingShards.joined(separator: ", ")))
            }
            if !s.staleUnits.isEmpty { print("  stale slices: \(s.staleUnits.joined(separator: ","))") }
        }
        print("\narrays:")
        let width = max(14, st.arrays.map(\.name.count).max() ?? 0)   // whole names (clusters_… can be long)
        for a in st.arrays {
            print("  \(a.name.padding(toLength: width, withPad: " ", startingAt: 0)) \(a.step) generation \(a.generation)"
                  + (a.levels.map { ", \($0) level\($0 == 1 ? "" : "s")" } ?? ", no pyramid (brainmap pyramid \(st.root) adds one)")
                  + (a.staging.map { " (generation \($0) being written under .brainmap/staging\(a.swapPending ? ", swap pending" : ""))" } ?? ""))
        }
        print(st.next.isEmpty ? "\nnothing stale" : "\nnext:\n" + st.next.map { "  " + $0 }.joined(separator: "\n"))
    }

    func jsonBytesOf(_ st: RunStatus) -> [UInt8] {
        let steps: [[String: Any]] = st.steps.map { s in
            ["name": s.name, "command": s.command, "generation": s.generation, "complete": s.complete, "stale": s.stale,
             "parameters": s.parameters, "done_per_shard": s.donePerShard, "last_per_shard": s.lastPerShard, "missing_shards": s.missingShards, "stale_units": s.staleUnits,
             "inputs": s.inputs.map { ["descriptor": $0.descriptor, "recorded": $0.recorded, "current": $0.current, "stale": $0.stale] }]
        }
        let arrays: [[String: Any]] = st.arrays.map { ["name": $0.name, "step": $0.step, "generation": $0.generation, "staging": $0.staging as Any, "swap_pending": $0.swapPending, "levels": $0.levels as Any] }
        let doc: [String: Any] = ["run": st.root, "steps": steps, "arrays": arrays, "next": st.next,
                                  "predicted_blocks_per_slice": Dictionary(uniqueKeysWithValues: st.predictedBlocks.map { ("\($0.key)", $0.value) }),
                                  "blocks_per_slice": st.blocksPerSlice as Any]
        return [UInt8]((try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])) ?? Data())
    }
}
