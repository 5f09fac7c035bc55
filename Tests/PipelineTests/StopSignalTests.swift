import Foundation
import XCTest
import TestSupport
@testable import Pipeline

/// Issue 17, case 4: a second SIGINT while predict drains its blocks in flight quits at once with status 130 — by
/// `_exit`, so OpenBLAS's exit handlers never run under its busy threads (that segfaulted, exit 139, 1 time in 9) —
/// and the run on disk stays consistent: the next run resumes it and finishes.
final class StopSignalTests: XCTestCase {
    func testSecondSIGINTQuitsCleanlyWith130() async throws {
        let f = try await PredictFixture.make("sigint2", shape: [2, 128, 160])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let args = ["predict", "--volume", f.raw, "--model", f.weights, "--stride", "2", "--tile", "16", "--block", "16",
                    "--no-mask", "--memory-budget", "700MiB", "--out", f.dir + "/run.zarr"]
        // Three rounds, the second signal 50, 100 and 200 ms after the first: mid-drain (two signals sent back to back
        // would reach the process as one — the kernel keeps one pending SIGINT).
        for (round, gap) in [50_000, 100_000, 200_000].enumerated() {
            let p = try BrainmapCLI.start(args, logDir: f.dir, tag: "int\(round)")
            // Signal once the run is under way: its first progress line (after its first block).
            for _ in 0..<600 where p.isRunning
                && !((try? String(contentsOfFile: f.dir + "/int\(round).err", encoding: .utf8))?.contains("blocks") ?? false) { usleep(25_000) }
            guard p.isRunning else { break }   // the run finished before a signal could land: nothing left to test
            kill(p.processIdentifier, SIGINT)
            usleep(useconds_t(gap))
            kill(p.processIdentifier, SIGINT)
            p.waitUntilExit()
            let r = BrainmapCLI.result(p, logDir: f.dir, tag: "int\(round)")
            XCTAssertEqual(p.terminationReason, .exit, "round \(round) ended by a signal (\(r.status)): \(r.stderr)")
            XCTAssertEqual(r.status, 130, r.stderr)
            // 50 ms is well inside the drain of 4 blocks in flight: the quit-now path; later ones may land after it.
            if round == 0 { XCTAssertTrue(r.stderr.contains("stopping now"), "stderr: \(r.stderr)\nstdout: \(r.stdout)") }
            XCTAssertTrue(r.stderr.contains("stopping now") || r.stderr.contains("re-run the same command to resume"), r.stderr)
        }
        // The run on disk is consistent: the next run resumes what was marked done and does only the rest.
        let r = try BrainmapCLI.run(args + ["--quiet"], logDir: f.dir, tag: "resume")
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("blocks:") }.map(String.init) ?? ""
        let words = line.split(separator: " ").map(String.init)
        let now = Int(words.count > 1 ? words[1] : "") ?? -1, already = Int(words.count > 4 ? words[4] : "") ?? -1
        XCTAssertGreaterThan(already, 0, line)
        XCTAssertEqual(now + already, 40, line)   // 2 slices × 4 × 5 blocks of 16² at stride 2
    }
}
