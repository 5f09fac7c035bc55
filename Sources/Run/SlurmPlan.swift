/// A whole run as Slurm jobs: sbatch scripts and `submit.sh`, which submits them in order, each after the previous
/// one succeeded (`--dependency=afterok`). A job that fails cancels the ones after it (`--kill-on-invalid-dep=yes`),
/// so the failure shows as the failed job's state and exit code and an empty queue, never as jobs pending forever.
/// Every step resumes from its done markers (factorize and cluster: from the last reduce's state), so running
/// `submit.sh` again after a failure (fixed) continues where the plan stopped.
public struct SlurmPlan: Sendable {
    /// How a step's processes are started.
    public enum Layout: Sendable, Equatable {
        /// An array of independent tasks, `--shard slurm/N` (predict: a task never waits for another).
        case array(tasks: Int)
        /// Up to `passes` times: an array of `tasks` map tasks (`--pass map --shard slurm/N`), then one reduce
        /// (`--pass reduce/N`) after all of them succeeded (factorize, cluster; StepPasses). No task waits for another.
        case mapReduce(tasks: Int, passes: Int)
        /// One process.
        case single
    }

    public struct Step: Sendable {
        /// The brainmap arguments, subcommand first (`["predict", "--volume", …]`), without `--shard`.
        public let arguments: [String]
        public let layout: Layout
        public init(arguments: [String], layout: Layout) { self.arguments = arguments; self.layout = layout }
        public var name: String { arguments.first ?? "step" }
    }

    /// One batch script: a step's, or one of a map/reduce step's two (`…-map`, `…-reduce`).
    public struct Script: Sendable, Equatable {
        public let name: String, text: String
    }

    public var steps: [Step]
    /// The brainmap executable, absolute (the jobs run it on other nodes).
    public var binary: String
    /// The jobs' working directory (relative paths in the steps are relative to it).
    public var workingDirectory: String
    public var cpusPerTask = 1
    public var memoryMiB: Int
    public var partition: String?, time: String?, account: String?
    /// Further `#SBATCH` arguments, as given (e.g. `--qos=long`).
    public var extra: [String] = []

    public init(steps: [Step], binary: String, workingDirectory: String, memoryMiB: Int) {
        self.steps = steps; self.binary = binary; self.workingDirectory = workingDirectory; self.memoryMiB = memoryMiB
    }

    /// Step i's scripts (file names without `.sbatch`, and texts); logs go to `logs/` beside them.
    public func scripts(_ i: Int, directory: String) -> [Script] {
        let step = steps[i], base = "\(i + 1)-\(step.name)"
        let about = "# Step \(i + 1) of \(steps.count), written by `brainmap slurm`"
        switch step.layout {
        case let .array(n):
            return [script(base, arguments: step.arguments + ["--shard", "slurm/\(n)"], tasks: n, directory: directory,
                           comment: about + "; resumes from its done markers when run again.")]
        case .single:
            return [script(base, arguments: step.arguments, tasks: nil, directory: directory,
                           comment: about + "; resumes from its done markers when run again.")]
        case let .mapReduce(n, passes):
            let chain = """
                \(about): one of up to \(passes) passes, each \(n) map tasks then a reduce. Every job does the step's next pass,
                # the one after the state the last reduce saved; once the step is complete (converged, or its last pass
                # merged), the later map and reduce jobs find it so and exit 0 at once.
                """
            return [script(base + "-map", arguments: step.arguments + ["--pass", "map", "--shard", "slurm/\(n)"], tasks: n, directory: directory,
                           comment: chain + "\n# A map task: this shard's statistics for the pass, published under the step's exchange/, then exit."),
                    script(base + "-reduce", arguments: step.arguments + ["--pass", "reduce/\(n)"], tasks: nil, directory: directory,
                           comment: chain + "\n# The reduce: merges the \(n) map tasks' statistics (refuses if one is missing), saves the next pass's parameters.")]
        }
    }

    /// Every script of the plan, in submission order.
    public func scripts(directory: String) -> [Script] { steps.indices.flatMap { scripts($0, directory: directory) } }

    private func script(_ name: String, arguments: [String], tasks: Int?, directory: String, comment: String) -> Script {
        var head = ["--job-name=brainmap-\(name)", "--chdir=\(workingDirectory)",
                    "--cpus-per-task=\(cpusPerTask)", "--mem=\(memoryMiB)M", "--kill-on-invalid-dep=yes"]
        if let n = tasks { head += ["--array=0-\(n - 1)", "--output=\(directory)/logs/\(name)-%A_%a.out"] }
        else { head += ["--output=\(directory)/logs/\(name)-%j.out"] }
        head += [partition.map { "--partition=\($0)" }, time.map { "--time=\($0)" }, account.map { "--account=\($0)" }].compactMap { $0 }
        head += extra
        return Script(name: name, text: "#!/bin/bash\n" + head.map { "#SBATCH \($0)\n" }.joined() + comment + "\n"
                      + "exec \(([binary] + arguments).map(shellQuoted).joined(separator: " "))\n")
    }

    /// `submit.sh`: submits every job in order, each after the previous one succeeded (a map array: all its tasks);
    /// prints "SCRIPT JOBID" lines.
    public func submitScript() -> String {
        var s = """
        #!/bin/bash
        # Written by `brainmap slurm`: submits the plan's jobs in order, each after the previous one succeeded.
        # A failed job cancels the later ones; fix the cause and run this again: every step resumes where it stopped.
        set -euo pipefail
        cd "$(dirname "$0")"
        mkdir -p logs
        dep=()
        submit() { id=$(sbatch --parsable "${dep[@]}" "$1.sbatch" | cut -d';' -f1); echo "$1 $id"; dep=(--dependency=afterok:$id); }

        """
        for i in steps.indices {
            let names = scripts(i, directory: "").map(\.name)
            if case let .mapReduce(_, passes) = steps[i].layout {
                s += "for pass in $(seq 1 \(passes)); do submit \(names[0]); submit \(names[1]); done\n"
            } else {
                s += "submit \(names[0])\n"
            }
        }
        return s
    }
}

/// `s` quoted for bash (single quotes; a single quote inside becomes '\'').
public func shellQuoted(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
