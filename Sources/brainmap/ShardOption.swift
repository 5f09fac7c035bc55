import ArgumentParser
import Foundation
import Run

/// `--shard`, the same flag on every sharded command. What it means (and how a Slurm array task or a Kubernetes
/// Indexed Job pod finds its share) is decided in one place, `Shard(flag:environment:)`.
struct ShardOption: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("""
        This process's share of the blocks: I/N (0-based); slurm (from the Slurm array task's variables, the default \
        inside an array task); slurm/N (I = SLURM_ARRAY_TASK_ID, e.g. to resubmit some indices); srun \
        (I/N = SLURM_PROCID/SLURM_NTASKS of an srun step's tasks); k8s/N (I = JOB_COMPLETION_INDEX of a Kubernetes \
        Indexed Job).
        """, valueName: "I/N|slurm|slurm/N|srun|k8s/N"))
    var shard: String?

    func resolve() throws -> Shard {
        let s = try Shard(flag: shard, environment: ProcessInfo.processInfo.environment)
        // A shard taken from the scheduler is named in the task's log: which one it was is the first question when
        // a task fails.
        if s.count > 1, shard?.first?.isNumber != true {
            FileHandle.standardError.write(Data("shard \(s) (--shard \(shard ?? "slurm, the default in an array task"))\n".utf8))
        }
        return s
    }
}
