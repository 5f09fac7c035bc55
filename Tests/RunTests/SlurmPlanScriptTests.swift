import XCTest
@testable import Run

/// What `brainmap slurm` writes, without a cluster (the real chain runs in PipelineTests/SlurmPlanTests).
final class SlurmPlanScriptTests: XCTestCase {
    func testScriptsAndSubmit() {
        var p = SlurmPlan(steps: [.init(arguments: ["predict", "--out", "my run.zarr"], layout: .array(tasks: 4)),
                                  .init(arguments: ["cleanup", "my run.zarr"], layout: .single),
                                  .init(arguments: ["factorize", "my run.zarr"], layout: .together(tasks: 3))],
                          binary: "/opt/bm/brainmap", workingDirectory: "/data", memoryMiB: 2560)
        p.partition = "cpu"; p.time = "4:00:00"; p.extra = ["--qos=long"]
        let predict = p.script(0, directory: "/data/jobs")
        for line in ["#SBATCH --array=0-3\n", "#SBATCH --chdir=/data\n", "#SBATCH --mem=2560M\n", "#SBATCH --partition=cpu\n",
                     "#SBATCH --time=4:00:00\n", "#SBATCH --qos=long\n", "#SBATCH --kill-on-invalid-dep=yes\n",
                     "#SBATCH --output=/data/jobs/logs/1-predict-%A_%a.out\n",
                     "exec /opt/bm/brainmap predict --out 'my run.zarr' --shard slurm/4\n"] {
            XCTAssertTrue(predict.contains(line), "\(line) not in\n\(predict)")
        }
        XCTAssertFalse(p.script(1, directory: "/d").contains("--shard"))
        let fac = p.script(2, directory: "/d")
        XCTAssertTrue(fac.contains("#SBATCH --ntasks=3\n") && fac.contains("exec srun --kill-on-bad-exit=1 /opt/bm/brainmap factorize 'my run.zarr' --shard srun\n"), fac)
        XCTAssertEqual(p.scriptName(2), "3-factorize.sbatch")
        let submit = p.submitScript()
        XCTAssertTrue(submit.contains("sbatch --parsable \"${dep[@]}\" 2-cleanup.sbatch") && submit.contains("dep=(--dependency=afterok:$id)"), submit)
        XCTAssertEqual(shellQuoted("it's"), "'it'\\''s'")
        XCTAssertEqual(shellQuoted(""), "''")
    }
}
