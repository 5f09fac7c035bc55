import ArgumentParser
import Foundation
import Run

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "A run's steps as Slurm jobs: one sbatch script per step, chained with afterok; --submit submits them.",
        discussion: """
        The steps are brainmap commands separated by ';' (quote it), each checked as `brainmap STEP …` would check \
        it, without --shard (the plan gives it): predict becomes an array of --tasks independent tasks (--shard \
        slurm/N: resubmit any index alone); factorize and cluster become, per pass over the blocks, an array of \
        --analysis-tasks map tasks (--pass map: each publishes its blocks' statistics and exits) and one reduce job \
        after them (--pass reduce/N: merges them, saves the next pass's parameters), up to the step's most passes \
        (once a GMM converges, the later jobs exit at once); every other command one task. DIR/submit.sh submits them in order, each after the previous one succeeded; a failure \
        cancels the later ones (--kill-on-invalid-dep). Running submit.sh again continues where the plan stopped: \
        every step resumes from its done markers.
        Example: brainmap slurm --dir jobs --tasks 100 --cpus-per-task 8 --partition cpu --time 4:00:00 \\
          predict --volume vol.zarr/raw --model m.safetensors --out run.zarr ';' cleanup run.zarr ';' \\
          factorize run.zarr --method nmf ';' cluster run.zarr --within CTX --erode 64
        """)

    @Option(help: "Directory for the scripts, submit.sh and logs/ (created).") var dir: String
    @Option(help: "Array tasks of predict.") var tasks = 4
    @Option(help: "Map tasks of each pass of factorize and cluster (1: one process).") var analysisTasks = 2
    @Option(help: "CPUs per task (predict's --threads unless given).") var cpusPerTask = 1
    @Option(help: "Memory per task, e.g. 4GiB (default: predict's --memory-budget + 512 MiB).") var mem: String?
    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Time limit per job, as sbatch takes it (e.g. 4:00:00).") var time: String?
    @Option(help: "Slurm account.") var account: String?
    @Option(name: .customLong("sbatch-arg"), help: "A further #SBATCH argument for every job (repeatable), e.g. --sbatch-arg=--qos=long.") var sbatchArgs: [String] = []
    @Flag(help: "Submit the plan (DIR/submit.sh) and print the job ids.") var submit = false
    @Argument(parsing: .captureForPassthrough, help: "The steps: brainmap commands separated by ';'.") var plan: [String] = []

    /// Commands that work on a run or its inputs and end: what a batch job can be (not demo, serve, bench, slurm).
    static let plannable: Set<String> = ["phantom", "train", "predict", "evaluate", "cleanup", "factorize", "select-factors",
                                         "cluster", "pyramid", "report", "import-tiff", "export-tiff", "status"]

    func run() throws {
        let groups = plan.split(separator: ";", omittingEmptySubsequences: true).map(Array.init)
        guard !groups.isEmpty else { throw ValidationError("give the steps, e.g. predict --volume … --out run.zarr ';' cleanup run.zarr") }
        guard tasks >= 1, analysisTasks >= 1, cpusPerTask >= 1 else { throw ValidationError("--tasks, --analysis-tasks and --cpus-per-task must be ≥ 1") }
        // Header values are written verbatim into `#SBATCH` lines: a line break would end the header and run the rest.
        for (flag, value) in [("--partition", partition), ("--time", time), ("--account", account), ("--mem", mem)] + sbatchArgs.map({ ("--sbatch-arg", Optional($0)) }) {
            if let value, value.contains(where: { $0.isNewline }) || value.isEmpty {
                throw ValidationError("\(flag) '\(value)': give one non-empty line (it becomes an #SBATCH line)")
            }
        }
        var steps: [SlurmPlan.Step] = []
        var budget = "2GiB"
        for (i, g) in groups.enumerated() {
            var args = g
            let what = "step \(i + 1) (\(args.joined(separator: " ")))"
            guard !args.contains(where: { $0 == "--shard" || $0.hasPrefix("--shard=") }) else {
                throw ValidationError("\(what): leave out --shard, the plan gives each task its shard")
            }
            // Array tasks start minutes apart and a resubmitted index starts again: with --restart each would discard
            // the others' work. Restart by hand first (brainmap STEP … --restart, or remove the run), then plan.
            guard !args.contains("--restart") else {
                throw ValidationError("\(what): leave out --restart — each job of the plan would start the step over and discard the "
                                      + "others' work; start it over once by hand first (e.g. delete the run or its step), then submit the plan")
            }
            guard let command = args.first, Self.plannable.contains(command) else {
                throw ValidationError("\(what): '\(args.first ?? "")' is not a step of a plan; steps are " + Self.plannable.sorted().joined(separator: ", "))
            }
            // Checked as the job will parse it, so a typo fails here, not hours later in the queue.
            let parsed: ParsableCommand
            do { parsed = try Brainmap.parseAsRoot(args) } catch {
                throw ValidationError("\(what): \(Brainmap.message(for: error))")
            }
            guard !args.contains(where: { $0 == "--pass" || $0.hasPrefix("--pass=") }) else {
                throw ValidationError("\(what): leave out --pass, the plan gives each job its part")
            }
            let layout: SlurmPlan.Layout
            switch args[0] {
            case "predict":
                layout = .array(tasks: tasks)
                if !args.contains("--threads") { args += ["--threads", "\(cpusPerTask)"] }
                if let k = args.firstIndex(of: "--memory-budget"), k + 1 < args.count { budget = args[k + 1] }
            case "factorize", "cluster":
                let passes = try (parsed as? Factorize)?.options().mostPasses ?? (parsed as! Cluster).options().mostPasses
                // Each pass is a map array and a reduce job submitted up front: a plan of thousands is a mistake
                // (e.g. --max-iter 1000000), and would flood the scheduler.
                if analysisTasks > 1 && passes > 1000 {
                    throw ValidationError("\(args[0]) would submit \(passes) passes (a map array and a reduce job each, at most 1000); "
                        + (args[0] == "cluster" ? "give --max-iter 998 or fewer (EM stops at convergence, usually within 100)" : "give --passes 999 or fewer"))
                }
                layout = analysisTasks > 1 ? .mapReduce(tasks: analysisTasks, passes: passes) : .single
            default: layout = .single
            }
            steps.append(.init(arguments: args, layout: layout))
        }
        let memBytes = try mem.map { try parseBytes($0, name: "--mem") } ?? (parseBytes(budget, name: "predict's --memory-budget") + (512 << 20))
        let cwd = FileManager.default.currentDirectoryPath
        let out = dir.hasPrefix("/") ? dir : cwd + "/" + dir
        var p = SlurmPlan(steps: steps, binary: Self.executable(), workingDirectory: cwd, memoryMiB: (memBytes + (1 << 20) - 1) >> 20)
        p.cpusPerTask = cpusPerTask; p.partition = partition; p.time = time; p.account = account; p.extra = sbatchArgs

        try FileManager.default.createDirectory(atPath: out + "/logs", withIntermediateDirectories: true)
        for script in p.scripts(directory: out) {
            try script.text.write(toFile: "\(out)/\(script.name).sbatch", atomically: true, encoding: .utf8)
            say("\(out)/\(script.name).sbatch")
        }
        try p.submitScript().write(toFile: out + "/submit.sh", atomically: true, encoding: .utf8)
        _ = chmod(out + "/submit.sh", 0o755)
        say("\(out)/submit.sh")
        guard submit else { return }
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/bash")
        sh.arguments = [out + "/submit.sh"]
        try sh.run()
        sh.waitUntilExit()
        guard sh.terminationStatus == 0 else { throw ExitCode(sh.terminationStatus) }
    }

    /// This executable's absolute path (the jobs run it, from any working directory).
    static func executable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }
}
