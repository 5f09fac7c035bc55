import ArgumentParser
import Foundation
import Run

/// `--pass`, the same flag on factorize and cluster: map tasks and reduces instead of shards that run at once
/// (what each does: StepPasses).
struct PassOption: ParsableArguments {
    @Option(help: ArgumentHelp("""
        Run one pass as a map task (with --shard, or alone as shard 0/1: this shard's statistics for the next pass, published, then exit) or \
        a reduce (reduce/N: merge the N map tasks' statistics, publish the next pass's parameters or the result). No \
        task waits for another; `brainmap slurm` chains them. A step already complete exits at once.
        """, valueName: "map|reduce/N"))
    var pass: String?

    func resolve(shard: Shard, restart: Bool) throws -> PassMode? {
        guard let pass else { return nil }
        // Flag errors exit 64, as ArgumentParser's own. One map task (--shard 0/1, or none) and reduce/1 are allowed:
        // a Kubernetes Indexed Job of one completion runs that way.
        let mode: PassMode
        do { mode = try PassMode(flag: pass) } catch { throw ValidationError("\(error)") }
        if restart { throw ValidationError("--restart with --pass: the jobs of a plan resume each other's work; to start a step over, run it once with --restart and without --pass, or change a parameter") }
        if case .reduce = mode, shard.count > 1 { throw ValidationError("--pass reduce/N runs alone: leave out --shard") }
        return mode
    }

    /// Runs the step; when this process's part of the pass ends (PassEnd), says what it published and returns nil.
    func run<T>(_ bars: PhaseBars, _ body: () async throws -> T) async throws -> T? {
        do { return try await body() } catch let end as PassEnd {
            bars.finish()
            for n in end.notes { say("note: \(n)") }
            say(end.description)
            return nil
        }
    }
}
