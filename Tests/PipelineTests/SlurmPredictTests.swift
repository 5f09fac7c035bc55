import Foundation
import XCTest
import TestSupport

/// `brainmap predict` as Slurm array tasks on a real one-node cluster (tools/slurm.sh): the tasks take their shards
/// from the array's variables, and a task cancelled mid-run and run again — resubmitted by index, or requeued by
/// Slurm — resumes from what it finished. Every chunk file must equal one process's.
final class SlurmPredictTests: XCTestCase {
    /// One cluster, fixture and single-process reference for the class (started, made and removed once).
    nonisolated(unsafe) static var cluster: LocalSlurm?
    nonisolated(unsafe) static var fixture: (dir: String, raw: String, weights: String)?
    nonisolated(unsafe) static var reference: [String: Data] = [:]
    var slurm: LocalSlurm!
    var dir = ""
    /// 3 slices of 256×320 at stride 4 in blocks of 16: 4×5 blocks a slice, 60 in all, 15 per task of 4 — each
    /// task runs for a few seconds, so a cancel lands mid-task.
    static let rows = 4, cols = 5, blocks = 60
    var common: [String] {
        let f = Self.fixture!
        return ["predict", "--volume", f.raw, "--model", f.weights, "--stride", "4", "--tile", "16", "--block", "16",
                "--no-mask", "--memory-budget", "700MiB", "--quiet"]
    }

    override func setUp() async throws {
        if let why = LocalSlurm.unavailable { throw XCTSkip(why) }
        if Self.cluster == nil { Self.cluster = try LocalSlurm.start() }
        slurm = Self.cluster
        if Self.fixture == nil {
            Self.fixture = try await PredictFixture.make("slurm", shape: [3, 256, 320])
            let r = try BrainmapCLI.run(common + ["--out", Self.fixture!.dir + "/ref.zarr"], logDir: Self.fixture!.dir, tag: "ref")
            XCTAssertEqual(r.status, 0, r.stderr)
            Self.reference = PredictFixture.arrayFiles(Self.fixture!.dir + "/ref.zarr")
            XCTAssertEqual(Self.reference.keys.filter { $0.hasPrefix("labels/0/") && !$0.contains(".z") }.count, Self.blocks)   // level 0 of the labels image group
        }
        dir = Self.fixture!.dir
    }

    override class func tearDown() {
        cluster?.stop(); cluster = nil
        if let f = fixture { try? FileManager.default.removeItem(atPath: f.dir) }
        fixture = nil
    }

    /// A batch script running the debug binary the tests built, by absolute path, one thread per task.
    func script(_ name: String, extra: [String] = []) throws -> String {
        let args = ([BrainmapCLI.binary] + common + ["--out", "\(dir)/\(name).zarr", "--threads", "1"] + extra).map { "'\($0)'" }
        let path = "\(dir)/\(name).sbatch"
        try """
        #!/bin/bash
        #SBATCH --job-name=brainmap-\(name)
        #SBATCH --cpus-per-task=1
        #SBATCH --mem=1G
        #SBATCH --output=\(dir)/\(name)-%A_%a.out
        exec \(args.joined(separator: " "))

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertSameFiles(_ name: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let got = PredictFixture.arrayFiles("\(dir)/\(name).zarr")
        XCTAssertEqual(Set(got.keys), Set(Self.reference.keys), what, file: file, line: line)
        for (k, v) in Self.reference where got[k] != v { XCTFail("\(k) differs: \(what)", file: file, line: line) }
    }

    /// How many of shard `t`'s (of 4) blocks have their `labels` chunk written (chunk z.by.bx is block (z·rows+by)·cols+bx).
    func labelChunks(_ name: String, shard t: Int) -> Int {
        let keys = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(name).zarr/labels/0")) ?? []
        return keys.filter { k in
            let p = k.split(separator: ".").compactMap { Int($0) }
            return p.count == 3 && ((p[0] * Self.rows + p[1]) * Self.cols + p[2]) % 4 == t
        }.count
    }

    func log(_ name: String, _ job: String, _ task: Int) -> String {
        (try? String(contentsOfFile: "\(dir)/\(name)-\(job)_\(task).out", encoding: .utf8)) ?? "(no log)"
    }

    func testArrayOfFourTasksEqualsOneProcess() throws {
        // No --shard: inside an array task it is `slurm`, I/N from SLURM_ARRAY_TASK_ID/MIN/COUNT.
        let job = try slurm.submit(["--array=0-3"], script: script("array"))
        try slurm.waitUntilGone(job)
        for t in 0..<4 {
            XCTAssertEqual(try slurm.state("\(job)_\(t)"), "COMPLETED", log("array", job, t))
            XCTAssertTrue(log("array", job, t).contains("blocks: 15 done now, 0 already done"), log("array", job, t))
        }
        assertSameFiles("array", "an array of 4 Slurm tasks against one process")
    }

    func testCancelledTasksResumeWhenResubmittedOrRequeued() throws {
        // slurm/4: the shard is the array index itself, so index 2 can be resubmitted alone (--array=2).
        let path = try script("cancel", extra: ["--shard", "slurm/4"])
        let job = try slurm.submit(["--array=0-3"], script: path)
        // Cancel tasks 2 and 3 as soon as each has written a block (watched together: with more CPUs all four run
        // at once, and a task left waiting would finish its 15 blocks first).
        var pending: Set<Int> = [2, 3]
        let end = Date().addingTimeInterval(120)
        while !pending.isEmpty {
            for t in pending where labelChunks("cancel", shard: t) > 0 {
                XCTAssertEqual(try slurm.run("scancel", ["\(job)_\(t)"]).status, 0)
                pending.remove(t)
            }
            guard Date() < end else { return XCTFail("tasks \(pending) wrote nothing:\n\(try slurm.run("squeue", []).out)") }
            usleep(20_000)
        }
        try slurm.waitUntilGone(job)
        for t in [2, 3] {
            XCTAssertEqual(try slurm.state("\(job)_\(t)"), "CANCELLED")
            XCTAssertLessThan(labelChunks("cancel", shard: t), 15, "task \(t) finished before it was cancelled: make the tasks longer")
        }

        // Index 2 resubmitted as a new array of one task; index 3 requeued in its own array (Slurm holds a requeued
        // job for two minutes: release it now).
        let again = try slurm.submit(["--array=2"], script: path)
        XCTAssertEqual(try slurm.run("scontrol", ["requeue", "\(job)_3"]).status, 0)
        XCTAssertEqual(try slurm.run("scontrol", ["update", "JobId=\(job)_3", "StartTime=now"]).status, 0)
        try slurm.waitUntilGone(again)
        try slurm.waitUntilGone(job)
        XCTAssertEqual(try slurm.state("\(again)_2"), "COMPLETED", log("cancel", again, 2))
        XCTAssertEqual(try slurm.state("\(job)_3"), "COMPLETED", log("cancel", job, 3))
        for (j, t) in [(again, 2), (job, 3)] {
            // (A requeued task's log may hold both runs: its last summary is the rerun's.)
            let summary = log("cancel", j, t).split(separator: "\n").last { $0.hasPrefix("blocks:") } ?? ""
            XCTAssertFalse(summary.isEmpty || summary.contains(" 0 already done"), "the rerun of task \(t) resumed nothing: \(summary)")
        }
        assertSameFiles("cancel", "tasks cancelled mid-run, then one resubmitted and one requeued")
    }
}
