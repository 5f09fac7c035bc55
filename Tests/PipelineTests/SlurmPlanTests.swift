import Foundation
import XCTest
import TestSupport

/// `brainmap slurm` on the real one-node cluster: the plan predict (array of 3) → cleanup → factorize PCA → cluster
/// GMM (each pass an array of 3 map tasks, then a reduce) fails visibly when its input is missing (predict FAILED,
/// every later job cancelled), and run again once the input is there it completes with what one process computes.
final class SlurmPlanTests: XCTestCase {
    func testPlanFailsVisiblyThenResumesToOneProcessResults() async throws {
        if let why = LocalSlurm.unavailable { throw XCTSkip(why) }
        let slurm = try LocalSlurm.start()
        defer { slurm.stop() }
        let f = try await PredictFixture.make("slurm-plan", shape: [3, 256, 320])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let d = f.dir, later = d + "/later.zarr"
        func predict(_ volume: String, _ out: String) -> [String] {
            ["predict", "--volume", volume, "--model", f.weights, "--out", out, "--stride", "8", "--tile", "16", "--block", "16",
             "--memory-budget", "700MiB", "--quiet"]
        }
        func factorize(_ run: String) -> [String] { ["factorize", run, "--method", "pca", "--k", "3", "--quiet"] }
        func cluster(_ run: String) -> [String] { ["cluster", run, "--on", "pca", "--k", "2", "--max-iter", "2", "--sample", "500", "--quiet"] }

        // One process: the reference.
        for (tag, args) in [("ref-predict", predict(f.raw, d + "/ref.zarr")), ("ref-pca", factorize(d + "/ref.zarr")), ("ref-gmm", cluster(d + "/ref.zarr"))] {
            let r = try BrainmapCLI.run(args, logDir: d, tag: tag)
            XCTAssertEqual(r.status, 0, r.stderr)
        }

        // The plan, submitted while its volume is missing.
        let run = d + "/run.zarr"
        setenv("SLURM_CONF", slurm.conf, 1)  // for the sbatch that `brainmap slurm --submit` runs
        defer { unsetenv("SLURM_CONF") }
        let plan = try BrainmapCLI.run(["slurm", "--dir", d + "/plan", "--tasks", "3", "--analysis-tasks", "3", "--mem", "1GiB", "--submit"]
                                       + predict(later + "/raw", run) + [";", "cleanup", run, "--quiet", ";"] + factorize(run) + [";"] + cluster(run),
                                       logDir: d, tag: "plan")
        XCTAssertEqual(plan.status, 0, plan.stderr)
        func ids(_ out: String) -> [String] { out.split(separator: "\n").compactMap { l in
            let p = l.split(separator: " "); return p.count == 2 && p[0].first?.isNumber == true ? String(p[1]) : nil } }
        // predict, cleanup, factorize's 2 passes and cluster's 4 (sample, 2 EM iterations, assignments): map + reduce each.
        let jobs = 2 + 2 * 2 + 2 * 4
        let first = ids(plan.stdout)
        XCTAssertEqual(first.count, jobs, plan.stdout)
        guard first.count == jobs else { return }
        for j in first { try slurm.waitUntilGone(j) }
        XCTAssertEqual(try slurm.state(first[0] + "_0"), "FAILED")
        XCTAssertEqual(try slurm.state(first[1]), "CANCELLED", "a failed predict must cancel cleanup")
        XCTAssertEqual(try slurm.state(first[2] + "_0"), "CANCELLED", "and factorize's map tasks")
        XCTAssertEqual(try slurm.state(first[jobs - 1]), "CANCELLED", "and the last reduce")

        // The volume appears; the same submit.sh continues the plan.
        try FileManager.default.moveItem(atPath: d + "/ph.zarr", toPath: later)
        let again = try LocalSlurm.shell("/bin/bash", [d + "/plan/submit.sh"], env: ["SLURM_CONF": slurm.conf])
        XCTAssertEqual(again.status, 0, again.err)
        let second = ids(again.out)
        XCTAssertEqual(second.count, jobs, again.out)
        for j in second { try slurm.waitUntilGone(j) }
        let arrays = again.out.split(separator: "\n").filter { $0.first?.isNumber == true }.map { $0.contains("predict") || $0.contains("-map") }
        for (k, j) in second.enumerated() {
            XCTAssertEqual(try slurm.state(arrays[k] ? j + "_2" : j), "COMPLETED", "job \(k + 1)")
        }
        let want = PredictFixture.arrayFiles(d + "/ref.zarr"), got = PredictFixture.arrayFiles(run)
        XCTAssertEqual(Set(got.keys), Set(want.keys))
        for (k, v) in want where got[k] != v { XCTFail("\(k) differs between the plan and one process") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/labels_clean/0/.zarray"))
        // PCA from 3 shards' merged moments = one process's, to rounding.
        func result(_ r: String, _ name: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: r + "/analysis/\(name).json"))) as! [String: Any]
        }
        let a = try result(d + "/ref.zarr", "pca"), b = try result(run, "pca")
        XCTAssertEqual(a["rows"] as? Int, b["rows"] as? Int)
        let va = a["explained_variance"] as! [Double], vb = b["explained_variance"] as! [Double]
        XCTAssertEqual(va.count, 3)
        for (x, y) in zip(va, vb) { XCTAssertEqual(x, y, accuracy: 1e-12 * max(1, abs(x))) }
        let ca = a["components"] as! [Double], cb = b["components"] as! [Double]
        for (x, y) in zip(ca, cb) { XCTAssertEqual(x, y, accuracy: 1e-10) }
        // The GMM's 2 EM iterations from 3 shards' statistics: as one process's, to the shard tests' 2%.
        let ga = try result(d + "/ref.zarr", "clusters"), gb = try result(run, "clusters")
        XCTAssertEqual(ga["rows"] as? Int, gb["rows"] as? Int)
        let la = ga["mean_log_likelihood_per_iteration"] as! [Double], lb = gb["mean_log_likelihood_per_iteration"] as! [Double]
        XCTAssertEqual(lb.count, 2)
        XCTAssertEqual(la.last!, lb.last!, accuracy: 0.02 * abs(la.last!))
        // status: each map task and the reduce reached the last pass.
        let status = try BrainmapCLI.run(["status", run], logDir: d, tag: "status")
        XCTAssertTrue(status.stdout.contains("reduce 4 (last: cluster-counts)") && status.stdout.contains("shard-2-of-3 4 (last: cluster-counts)"), status.stdout)
    }
}
