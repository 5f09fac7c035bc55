import XCTest
@testable import Run

/// What `brainmap slurm` writes, without a cluster (the real chain runs in PipelineTests/SlurmPlanTests).
final class SlurmPlanScriptTests: XCTestCase {
    func testScriptsAndSubmit() {
        var p = SlurmPlan(steps: [.init(arguments: ["predict", "--out", "my run.zarr"], layout: .array(tasks: 4)),
                                  .init(arguments: ["cleanup", "my run.zarr"], layout: .single),
                                  .init(arguments: ["factorize", "my run.zarr"], layout: .mapReduce(tasks: 3, passes: 2))],
                          binary: "/opt/bm/brainmap", workingDirectory: "/data", memoryMiB: 2560)
        p.partition = "cpu"; p.time = "4:00:00"; p.extra = ["--qos=long"]
        let predict = p.scripts(0, directory: "/data/jobs")[0].text
        for line in ["#SBATCH --array=0-3\n", "#SBATCH --chdir=/data\n", "#SBATCH --mem=2560M\n", "#SBATCH --partition=cpu\n",
                     "#SBATCH --time=4:00:00\n", "#SBATCH --qos=long\n", "#SBATCH --kill-on-invalid-dep=yes\n",
                     "#SBATCH --output=/data/jobs/logs/1-predict-%A_%a.out\n",
                     "exec /opt/bm/brainmap predict --out 'my run.zarr' --shard slurm/4\n"] {
            XCTAssertTrue(predict.contains(line), "\(line) not in\n\(predict)")
        }
        XCTAssertFalse(p.scripts(1, directory: "/d")[0].text.contains("--shard"))
        // factorize: per pass an array of map tasks and a reduce.
        let fac = p.scripts(2, directory: "/d")
        XCTAssertEqual(fac.map(\.name), ["3-factorize-map", "3-factorize-reduce"])
        XCTAssertTrue(fac[0].text.contains("#SBATCH --array=0-2\n") && fac[0].text.contains("exec /opt/bm/brainmap factorize 'my run.zarr' --pass map --shard slurm/3\n"), fac[0].text)
        XCTAssertTrue(!fac[1].text.contains("--array") && fac[1].text.contains("exec /opt/bm/brainmap factorize 'my run.zarr' --pass reduce/3\n"), fac[1].text)
        XCTAssertEqual(p.scripts(directory: "/d").map(\.name), ["1-predict", "2-cleanup", "3-factorize-map", "3-factorize-reduce"])
        let submit = p.submitScript()
        for line in ["submit() { id=$(sbatch --parsable \"${dep[@]}\" \"$1.sbatch\" | cut -d';' -f1); echo \"$1 $id\"; dep=(--dependency=afterok:$id); }\n",
                     "submit 1-predict\nsubmit 2-cleanup\nfor pass in $(seq 1 2); do submit 3-factorize-map; submit 3-factorize-reduce; done\n"] {
            XCTAssertTrue(submit.contains(line), "\(line) not in\n\(submit)")
        }
        XCTAssertEqual(shellQuoted("it's"), "'it'\\''s'")
        XCTAssertEqual(shellQuoted(""), "''")
    }
}
