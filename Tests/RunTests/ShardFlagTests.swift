import XCTest
@testable import Run

/// `--shard` from the flag and the environment, as Slurm 22.05 sets it (the variables below are what
/// `sbatch --array=…` gave on the test cluster, see tools/slurm.sh).
final class ShardFlagTests: XCTestCase {
    func array(_ id: Int, min: Int, max: Int, step: Int = 1, count: Int) -> [String: String] {
        ["SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_MIN": "\(min)", "SLURM_ARRAY_TASK_MAX": "\(max)",
         "SLURM_ARRAY_TASK_STEP": "\(step)", "SLURM_ARRAY_TASK_COUNT": "\(count)", "SLURM_ARRAY_JOB_ID": "12"]
    }

    func shard(_ flag: String?, _ env: [String: String] = [:]) throws -> Shard { try Shard(flag: flag, environment: env) }

    func message(_ flag: String?, _ env: [String: String] = [:]) -> String {
        do { _ = try shard(flag, env); return "no error" } catch { return "\(error)" }
    }

    func testExplicitAndDefault() throws {
        XCTAssertEqual(try shard("2/3"), try Shard(index: 2, count: 3))
        XCTAssertEqual(try shard(nil), .all)
        // An explicit I/N wins over the array's variables.
        XCTAssertEqual(try shard("1/5", array(3, min: 0, max: 3, count: 4)), try Shard(index: 1, count: 5))
        for bad in ["3", "a/b", "1/2/3", "3/3", "-1/2", "0/0", "slurm/0", "k8s", "slurm/x", ""] {
            XCTAssertTrue(message(bad).contains("--shard"), "\(bad): \(message(bad))")
        }
    }

    func testSlurmArrays() throws {
        // --array=0-3 and 1-4: the task's place in the array; the default inside an array task.
        XCTAssertEqual(try shard("slurm", array(2, min: 0, max: 3, count: 4)), try Shard(index: 2, count: 4))
        XCTAssertEqual(try shard(nil, array(2, min: 0, max: 3, count: 4)), try Shard(index: 2, count: 4))
        XCTAssertEqual(try shard("slurm", array(4, min: 1, max: 4, count: 4)), try Shard(index: 3, count: 4))
        // --array=0-10:5 (Slurm: MIN 0, MAX 10, STEP 5, COUNT 3): task 10 is shard 2 of 3.
        XCTAssertEqual(try shard("slurm", array(10, min: 0, max: 10, step: 5, count: 3)), try Shard(index: 2, count: 3))
        // A throttle (%2) changes nothing Slurm reports. Gaps (--array=1,3,8: MIN 1, MAX 8, STEP 1, COUNT 3) are refused.
        let gaps = message("slurm", array(3, min: 1, max: 8, count: 3))
        XCTAssertTrue(gaps.contains("not one evenly spaced range") && gaps.contains("--shard slurm/N"), gaps)
        XCTAssertTrue(message(nil, array(3, min: 1, max: 8, count: 3)).contains("the default in a Slurm array task"))
        // Not in an array task.
        let outside = message("slurm", ["SLURM_JOB_ID": "7"])
        XCTAssertTrue(outside.contains("$SLURM_ARRAY_TASK_ID") && outside.contains("--shard I/N"), outside)
        XCTAssertTrue(message("slurm", ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "1",
                                        "SLURM_ARRAY_TASK_COUNT": "2"]).contains("'x', not a non-negative integer"))
    }

    func testIndexGivenCount() throws {
        // Resubmitting index 2 of an array of 4 as its own array (--array=2: MIN 2, COUNT 1): slurm/4 keeps shard 2/4.
        XCTAssertEqual(try shard("slurm/4", array(2, min: 2, max: 2, count: 1)), try Shard(index: 2, count: 4))
        XCTAssertEqual(try shard(nil, array(2, min: 2, max: 2, count: 1)), .all)
        let big = message("slurm/4", array(4, min: 4, max: 4, count: 1))
        XCTAssertTrue(big.contains("shard 4 of 4 does not exist"), big)
        // The tasks of one srun step; not the batch script itself (no SLURM_STEP_ID).
        XCTAssertEqual(try shard("srun", ["SLURM_PROCID": "1", "SLURM_NTASKS": "3", "SLURM_STEP_ID": "0"]), try Shard(index: 1, count: 3))
        let batch = message("srun", ["SLURM_PROCID": "0", "SLURM_NTASKS": "3", "SLURM_JOB_ID": "9"])
        XCTAssertTrue(batch.contains("$SLURM_STEP_ID") && batch.contains("srun brainmap"), batch)
        // A Kubernetes Indexed Job's pod.
        XCTAssertEqual(try shard("k8s/8", ["JOB_COMPLETION_INDEX": "5"]), try Shard(index: 5, count: 8))
        let k8s = message("k8s/8", [:])
        XCTAssertTrue(k8s.contains("$JOB_COMPLETION_INDEX") && k8s.contains("Kubernetes Indexed Job"), k8s)
    }

    /// `--pass`: map, or reduce/N with N the map tasks' count; anything else names the accepted forms.
    func testPassFlag() throws {
        XCTAssertEqual(try PassMode(flag: "map"), .map)
        XCTAssertEqual(try PassMode(flag: "reduce/100"), .reduce(tasks: 100))
        XCTAssertEqual(try PassMode(flag: "reduce/1"), .reduce(tasks: 1), "one map task (a Kubernetes Job of one completion)")
        for bad in ["reduce", "reduce/0", "reduce/x", "Map", "reduce/2/3", ""] {
            do { _ = try PassMode(flag: bad); XCTFail(bad) }
            catch { XCTAssertTrue("\(error)".contains("--pass must be map or reduce/N"), "\(bad): \(error)") }
        }
    }
}
