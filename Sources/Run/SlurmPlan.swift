/// A whole run as Slurm jobs: one sbatch script per step and `submit.sh`, which submits them in order, each after
/// the previous one succeeded (`--dependency=afterok`). A step that fails cancels the ones after it
/// (`--kill-on-invalid-dep=yes`), so the failure shows as the failed job's state and exit code and an empty queue,
/// never as jobs pending forever. Every step resumes from its done markers, so running `submit.sh` again after a
/// failure (fixed) continues where the plan stopped.
public struct SlurmPlan: Sendable {
    /// How a step's processes are started.
    public enum Layout: Sendable, Equatable {
        /// An array of independent tasks, `--shard slurm/N` (predict: a task never waits for another).
        case array(tasks: Int)
        /// N tasks of one srun step in one allocation, `--shard srun` (factorize, cluster: their shards exchange
        /// statistics after every pass, so they must run together).
        case together(tasks: Int)
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

    /// The file name of step i's script.
    public func scriptName(_ i: Int) -> String { "\(i + 1)-\(steps[i].name).sbatch" }

    /// Step i's batch script; logs go to `logs/` beside it.
    public func script(_ i: Int, directory: String) -> String {
        let step = steps[i]
        var head = ["--job-name=brainmap-\(i + 1)-\(step.name)", "--chdir=\(workingDirectory)",
                    "--cpus-per-task=\(cpusPerTask)", "--mem=\(memoryMiB)M", "--kill-on-invalid-dep=yes"]
        var args = step.arguments, launch = "exec"
        switch step.layout {
        case let .array(n):
            head += ["--array=0-\(n - 1)", "--output=\(directory)/logs/\(i + 1)-\(step.name)-%A_%a.out"]
            args += ["--shard", "slurm/\(n)"]
        case let .together(n):
            head += ["--ntasks=\(n)", "--output=\(directory)/logs/\(i + 1)-\(step.name)-%j.out"]
            args += ["--shard", "srun"]
            // One task that dies ends the step at once, rather than leaving the others waiting for its statistics.
            launch = "exec srun --kill-on-bad-exit=1"
        case .single:
            head += ["--output=\(directory)/logs/\(i + 1)-\(step.name)-%j.out"]
        }
        head += [partition.map { "--partition=\($0)" }, time.map { "--time=\($0)" }, account.map { "--account=\($0)" }].compactMap { $0 }
        head += extra
        return "#!/bin/bash\n" + head.map { "#SBATCH \($0)\n" }.joined()
            + "# Step \(i + 1) of \(steps.count), written by `brainmap slurm`; resumes from its done markers when run again.\n"
            + "\(launch) \(([binary] + args).map(shellQuoted).joined(separator: " "))\n"
    }

    /// `submit.sh`: submits every step in order, each after the previous one succeeded; prints "STEP JOBID" lines.
    public func submitScript() -> String {
        var s = """
        #!/bin/bash
        # Written by `brainmap slurm`: submits the plan's steps in order, each after the previous one succeeded.
        # A failed step cancels the later ones; fix the cause and run this again: every step resumes where it stopped.
        set -euo pipefail
        cd "$(dirname "$0")"
        mkdir -p logs
        dep=()

        """
        for i in steps.indices {
            let n = scriptName(i)
            s += "id=$(sbatch --parsable \"${dep[@]}\" \(n) | cut -d';' -f1); echo \"\(n.dropLast(7)) $id\"; dep=(--dependency=afterok:$id)\n"
        }
        return s
    }
}

/// `s` quoted for bash (single quotes; a single quote inside becomes '\'').
public func shellQuoted(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
