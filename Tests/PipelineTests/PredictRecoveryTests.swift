import Foundation
import XCTest
import TestSupport
import Run
@testable import Pipeline

/// The `brainmap predict` process as a user runs it: killed at random instants, stopped by a signal, split over
/// shards running at once — the final arrays must equal an uninterrupted run's, byte for byte.
final class PredictRecoveryTests: XCTestCase {
    /// The fixture and the uninterrupted run's files, made once for the three tests (the reference run is a third of
    /// each test's time; its inputs are deterministic, so one serves all). Each test writes its own run beside it.
    nonisolated(unsafe) static var shared: (dir: String, raw: String, weights: String, ref: [String: Data])?
    var dir: String { Self.shared!.dir }
    var raw: String { Self.shared!.raw }
    var weights: String { Self.shared!.weights }
    /// Many small blocks, so kills land mid-run.
    var common: [String] { ["predict", "--volume", raw, "--model", weights, "--stride", "2", "--tile", "16", "--block", "16",
                            "--no-mask", "--memory-budget", "700MiB"] }

    override func setUp() async throws {
        guard Self.shared == nil else { return }
        let f = try await PredictFixture.make("recovery", shape: [3, 256, 320])
        Self.shared = (f.dir, f.raw, f.weights, [:])
        let r = try BrainmapCLI.run(common + ["--out", dir + "/ref.zarr"], logDir: dir, tag: "ref")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("blocks: 240 done now"), r.stdout)
        Self.shared!.ref = PredictFixture.arrayFiles(dir + "/ref.zarr")
    }

    override class func tearDown() {
        if let d = shared?.dir { try? FileManager.default.removeItem(atPath: d) }
        shared = nil
    }

    func reference() throws -> [String: Data] {
        let ref = Self.shared!.ref
        XCTAssertFalse(ref.isEmpty, "the reference run wrote nothing")
        return ref
    }

    func testKillNineAtRandomInstantsThenResumeIsByteIdentical() throws {
        let ref = try reference()
        // Per array: 240 blocks, and per slice pyramid levels of 4 × 5, 2 × 3, 1 × 2 and 1 chunks (80 × 64 … 8 × 10).
        XCTAssertEqual(ref.keys.filter { !$0.contains(".z") }.count, (240 + 3 * 29) * 4)
        let out = dir + "/killed.zarr"
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        for round in 0..<3 {
            // Killed at a random instant after the run has made progress (on a loaded machine start-up alone can
            // take seconds; a kill before the first block would test nothing).
            let before = (try? Run.open(out).done(step: "predict").count) ?? 0
            let p = try BrainmapCLI.start(common + ["--out", out], logDir: dir, tag: "kill\(round)")
            for _ in 0..<1200 where p.isRunning && ((try? Run.open(out).done(step: "predict").count) ?? 0) <= before { usleep(50_000) }
            usleep(UInt32.random(in: 0...1_500_000, using: &rng))
            if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            p.waitUntilExit()
        }
        XCTAssertGreaterThan(kills, 0, "no run was killed: make the runs longer")
        let r = try BrainmapCLI.run(common + ["--out", out], logDir: dir, tag: "resume")
        XCTAssertEqual(r.status, 0, r.stderr)
        let resumed = r.stdout.split(separator: "\n").first { $0.hasPrefix("blocks:") } ?? ""
        XCTAssertFalse(resumed.contains(" 0 already done"), "the resume skipped nothing: \(resumed)")
        let got = PredictFixture.arrayFiles(out)
        XCTAssertEqual(Set(got.keys), Set(ref.keys))
        for (k, v) in ref { XCTAssertEqual(got[k], v, "\(k) differs after kill -9 and resume") }
    }

    func testThreeShardsAtOnceEqualOneProcess() throws {
        let ref = try reference()
        let out = dir + "/sharded.zarr"
        let procs = try (0..<3).map { i in try BrainmapCLI.start(common + ["--out", out, "--shard", "\(i)/3"], logDir: dir, tag: "shard\(i)") }
        for (i, p) in procs.enumerated() {
            p.waitUntilExit()
            let r = BrainmapCLI.result(p, logDir: dir, tag: "shard\(i)")
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("blocks: 80 done now"), r.stdout)
        }
        let got = PredictFixture.arrayFiles(out)
        XCTAssertEqual(Set(got.keys), Set(ref.keys))
        for (k, v) in ref { XCTAssertEqual(got[k], v, "\(k) differs between 3 shards and one process") }
        // A rerun of any shard finds its work done.
        let again = try BrainmapCLI.run(common + ["--out", out, "--shard", "1/3"], logDir: dir, tag: "again")
        XCTAssertTrue(again.stdout.contains("0 done now, 80 already done"), again.stdout)
        // A shard with other parameters is refused, naming the difference.
        let bad = try BrainmapCLI.run(common.replacingStride("4") + ["--out", out, "--shard", "2/3"], logDir: dir, tag: "bad")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("stride: the run has 2, this command has 4"), bad.stderr)
    }

    func testSIGTERMFinishesBlocksInFlightAndExitsResumable() throws {
        let ref = try reference()
        let out = dir + "/term.zarr"
        let p = try BrainmapCLI.start(common + ["--out", out], logDir: dir, tag: "term")
        let journal = out + "/.brainmap/predict-g1/shard-0-of-1.log"
        for _ in 0..<1200 where (try? String(contentsOfFile: journal, encoding: .utf8))?.contains("\n") != true { usleep(50_000) }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let r = BrainmapCLI.result(p, logDir: dir, tag: "term")
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertTrue(r.stderr.contains("re-run the same command to resume"), r.stderr)
        // Every block it says it did is journaled, and nothing more.
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("blocks:") }.map(String.init) ?? ""
        let done = Int(line.split(separator: " ")[1]) ?? -1
        let journaled = (try String(contentsOfFile: journal, encoding: .utf8)).split(separator: "\n").count
        XCTAssertEqual(done, journaled, line)
        XCTAssertLessThan(done, 240)
        let resume = try BrainmapCLI.run(common + ["--out", out], logDir: dir, tag: "term-resume")
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertTrue(resume.stdout.contains("\(240 - done) done now, \(done) already done"), resume.stdout)
        let got = PredictFixture.arrayFiles(out)
        for (k, v) in ref { XCTAssertEqual(got[k], v, "\(k) differs after SIGTERM and resume") }
    }
}

/// A run whose output disk fills up stops with a clear error, keeps what it finished, and resumes to the same bytes
/// once there is room (a 2 MB tmpfs, grown by remounting; needs root, as CI has).
final class PredictFullDiskTests: XCTestCase {
    func testFullDiskStopsResumably() async throws {
        let f = try await PredictFixture.make("fulldisk", shape: [3, 256, 320])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let mnt = f.dir + "/small"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        func sh(_ args: [String]) -> Int32 {
            let p = Process(); p.executableURL = URL(fileURLWithPath: "/bin/mount"); p.arguments = args
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return -1 }
            p.waitUntilExit(); return p.terminationStatus
        }
        guard sh(["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]) == 0 else { throw XCTSkip("cannot mount a tmpfs here (not root)") }
        defer { let p = Process(); p.executableURL = URL(fileURLWithPath: "/bin/umount"); p.arguments = [mnt]; try? p.run(); p.waitUntilExit() }
        let args = ["predict", "--volume", f.raw, "--model", f.weights, "--stride", "2", "--tile", "16", "--block", "16",
                    "--no-mask", "--memory-budget", "700MiB", "--quiet"]
        let ref = try BrainmapCLI.run(args + ["--out", f.dir + "/ref.zarr"], logDir: f.dir, tag: "ref")
        XCTAssertEqual(ref.status, 0, ref.stderr)
        let full = try BrainmapCLI.run(args + ["--out", mnt + "/run.zarr"], logDir: f.dir, tag: "full")
        XCTAssertNotEqual(full.status, 0)
        XCTAssertTrue(full.stderr.contains("No space left on device") && full.stderr.contains("re-run"), full.stderr)
        let done = try Run.open(mnt + "/run.zarr").done(step: "predict")
        XCTAssertGreaterThan(done.count, 0); XCTAssertLessThan(done.count, 240)
        // Nothing half-written is visible: every chunk file there decodes (checked by the byte comparison below).
        XCTAssertEqual(sh(["-o", "remount,size=64m", mnt]), 0)
        let resumed = try BrainmapCLI.run(args + ["--out", mnt + "/run.zarr"], logDir: f.dir, tag: "resumed")
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("\(done.count) already done"), resumed.stdout)
        let want = PredictFixture.arrayFiles(f.dir + "/ref.zarr"), got = PredictFixture.arrayFiles(mnt + "/run.zarr")
        XCTAssertEqual(Set(got.keys), Set(want.keys))
        for (k, v) in want { XCTAssertEqual(got[k], v, "\(k) differs after the disk filled up and the run resumed") }
    }
}

extension Array where Element == String {
    /// The same arguments with --stride's value replaced.
    func replacingStride(_ v: String) -> [String] {
        var a = self
        if let i = a.firstIndex(of: "--stride") { a[i + 1] = v }
        return a
    }
}

/// Peak RSS of `brainmap predict` under --memory-budget, and not growing with the number of slices.
final class PredictMemoryTests: XCTestCase {
    func testPeakRSSStaysUnderTheBudgetWhateverTheSliceCount() async throws {
        let f = try await PredictFixture.make("memory", shape: [8, 512, 1024], chunks: [1, 256, 256])
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let budget = 420
        func peak(_ slices: String, _ tag: String) throws -> Double {
            let r = try BrainmapCLI.run(["predict", "--volume", f.raw, "--model", f.weights, "--out", f.dir + "/\(tag).zarr",
                                         "--slices", slices, "--stride", "4", "--tile", "64", "--no-mask",
                                         "--memory-budget", "\(budget)MiB"], logDir: f.dir, tag: tag)
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = r.stdout.split(separator: "\n").first { $0.contains("peak RSS") }.map(String.init) ?? ""
            guard let m = line.range(of: #"peak RSS ([0-9.]+) MiB"#, options: .regularExpression) else { XCTFail(r.stdout); return 0 }
            return Double(line[m].split(separator: " ")[2])!
        }
        let two = try peak("0:2", "two"), eight = try peak("0:8", "eight")
        print("peak RSS: 2 slices \(two) MiB, 8 slices \(eight) MiB, budget \(budget) MiB")
        XCTAssertLessThanOrEqual(two, Double(budget))
        XCTAssertLessThanOrEqual(eight, Double(budget))
        XCTAssertLessThanOrEqual(eight, two * 1.05 + 8, "memory grew with the number of slices")
    }
}
