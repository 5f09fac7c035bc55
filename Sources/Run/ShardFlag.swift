/// `--shard`, the one parser every sharded command uses: the flag's text and the process environment → a `Shard`.
///
/// - `I/N`: as given.
/// - `slurm`: a Slurm array task's place in its array — I = (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / STEP,
///   N = SLURM_ARRAY_TASK_COUNT. Any array whose indices are one arithmetic sequence works (`0-3`, `1-4`, `0-10:2`,
///   with or without a `%` throttle); an array with gaps (`--array=1,3,8`) is refused, because its tasks' places
///   would not be 0…N−1 (give `slurm/N` instead). A task requeued by Slurm keeps its array's variables.
/// - `slurm/N`: I = SLURM_ARRAY_TASK_ID itself, for N given. The form for resubmitting some indices of an array
///   that ran as `--array=0-(N−1)`: `sbatch --array=2,5 …` reruns shards 2 and 5 of N.
/// - `srun`: I = SLURM_PROCID, N = SLURM_NTASKS — the tasks of one `srun` job step, started together in one
///   allocation (what shards that wait for each other need; an array's tasks may run at different times).
/// - `k8s/N`: I = JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pod), N given (= the Job's `completions`;
///   Kubernetes does not put it in the pod's environment).
/// - No flag: `slurm` inside a Slurm array task (SLURM_ARRAY_TASK_ID set), else the whole run (0/1).
extension Shard {
    public init(flag: String?, environment env: [String: String]) throws {
        guard let flag else {
            self = env["SLURM_ARRAY_TASK_ID"] == nil ? .all : try Shard.slurmArray(env)
            return
        }
        let parts = flag.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, parts.count) {
        case ("slurm", 1): self = try Shard.slurmArray(env)
        case ("srun", 1):
            // SLURM_STEP_ID tells a task srun started from the batch script itself, which has SLURM_PROCID 0 too.
            _ = try Shard.variable("SLURM_STEP_ID", env, flag)
            self = try Shard(index: Shard.variable("SLURM_PROCID", env, flag), count: Shard.variable("SLURM_NTASKS", env, flag), flag)
        case ("slurm", 2):
            let n = try Shard.count(parts[1], flag)
            self = try Shard(index: Shard.variable("SLURM_ARRAY_TASK_ID", env, flag), count: n, flag)
        case ("k8s", 2):
            let n = try Shard.count(parts[1], flag)
            self = try Shard(index: Shard.variable("JOB_COMPLETION_INDEX", env, flag), count: n, flag)
        case (_, 2):
            guard let i = Int(parts[0]), let n = Int(parts[1]) else { throw Shard.usage(flag) }
            self = try Shard(index: i, count: n)   // a plain I/N: the plain message
        default: throw Shard.usage(flag)
        }
    }

    /// The task's place in its Slurm array (see the type's note).
    static func slurmArray(_ env: [String: String]) throws -> Shard {
        let flag = "slurm"
        let id = try variable("SLURM_ARRAY_TASK_ID", env, flag), min = try variable("SLURM_ARRAY_TASK_MIN", env, flag)
        let max = try variable("SLURM_ARRAY_TASK_MAX", env, flag), n = try variable("SLURM_ARRAY_TASK_COUNT", env, flag)
        // Slurm reports STEP 1 for index lists; older versions may leave it unset.
        let step = env["SLURM_ARRAY_TASK_STEP"].flatMap { Int($0) } ?? 1
        guard step >= 1, n >= 1, max >= min, (max - min) % step == 0, (max - min) / step + 1 == n, (id - min) % step == 0 else {
            throw RunError.input("""
                --shard slurm (the default in a Slurm array task): this array's indices (\(min)…\(max), step \(step), \(n) tasks; this task \(id)) are not one \
                evenly spaced range, so its tasks cannot be numbered 0…N−1. Submit the array as --array=0-\(n - 1) \
                (a % throttle is fine), or give the shard count: --shard slurm/N takes SLURM_ARRAY_TASK_ID as the \
                shard index (e.g. to resubmit indices 2 and 5 of an array of 8: sbatch --array=2,5 with --shard slurm/8)
                """)
        }
        return try Shard(index: (id - min) / step, count: n, flag)
    }

    private init(index: Int, count: Int, _ flag: String) throws {
        guard index >= 0, index < count else {
            throw RunError.input("--shard \(flag): shard \(index) of \(count) does not exist (need 0 ≤ I < N): give the array's full size as N, e.g. --array=0-\(count - 1) with --shard \(flag)")
        }
        try self.init(index: index, count: count)
    }

    private static func count(_ s: String, _ flag: String) throws -> Int {
        guard let n = Int(s), n >= 1 else { throw usage(flag) }
        return n
    }

    private static func variable(_ name: String, _ env: [String: String], _ flag: String) throws -> Int {
        guard let s = env[name] else {
            let context = name == "JOB_COMPLETION_INDEX" ? "a pod of a Kubernetes Indexed Job"
            : flag == "srun" ? "a task that srun started (srun brainmap … inside an sbatch job)" : "a Slurm array task (sbatch --array=…)"
            throw RunError.input("--shard \(flag) needs $\(name), which is set only in \(context); outside one give --shard I/N")
        }
        guard let v = Int(s), v >= 0 else { throw RunError.input("--shard \(flag): $\(name) is '\(s)', not a non-negative integer") }
        return v
    }

    private static func usage(_ flag: String) -> RunError {
        RunError.input("--shard must be I/N (e.g. 0/3), slurm, slurm/N, srun or k8s/N; got '\(flag)'")
    }
}
