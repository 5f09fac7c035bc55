import Foundation
import XCTest
import TestSupport
@testable import Pipeline

/// Issue 17, case 5: every refused flag of predict, evaluate, cleanup, factorize, cluster and select-factors names
/// itself, the value and the accepted range, before any work; values starting with '-' reach the check (they read as
/// "Missing value").
final class FlagTests: XCTestCase {
    func expect(_ args: [String], _ needles: [String], dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try BrainmapCLI.run(args, logDir: dir)
        XCTAssertNotEqual(r.status, 0, "\(args) was accepted", file: file, line: line)
        XCTAssertFalse(r.status > 128, "\(args) crashed (\(r.status))", file: file, line: line)
        for n in needles { XCTAssertTrue(r.stderr.contains(n), "'\(n)' not in: \(r.stderr)", file: file, line: line) }
    }

    func testPredictFlags() async throws {
        let f = try await PredictFixture.make("flags")
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let base = ["predict", "--volume", f.raw, "--model", f.weights, "--slices", "0", "--out", f.dir + "/run.zarr", "--quiet"]
        try expect(base + ["--tile", "0"], ["--tile 0 is below the accepted minimum 1"], dir: f.dir)
        try expect(base + ["--tile", "-5"], ["--tile -5 is below the accepted minimum 1"], dir: f.dir)
        try expect(base + ["--block", "7"], ["--block 7 is below the accepted minimum 16", "block 7 at stride 1 computes ~400 pixels"], dir: f.dir)
        try expect(base + ["--threads", "0"], ["--threads 0 is below the accepted minimum 1"], dir: f.dir)
        try expect(base + ["--memory-budget", "1"], ["--memory-budget 1 bytes cannot hold one tile", "needs at least"], dir: f.dir)
        try expect(base + ["--memory-budget", "1e30GiB"], ["--memory-budget must be a size from 1 byte"], dir: f.dir)
        try expect(base + ["--stride", "3"], ["--stride 3: use 1, 2, 4, 8 or 16"], dir: f.dir)
        // Values starting with '-' reach their own checks instead of "Missing value".
        try expect(base + ["--shard", "-1/2"], ["--shard -1/2: need 0 ≤ I < N"], dir: f.dir)
        try expect(base + ["--memory-budget", "-5MiB"], ["--memory-budget must be a size", "got '-5MiB'"], dir: f.dir)
        try expect(base + ["--slices", "-1"], ["--slices: slice -1 is negative"], dir: f.dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.dir + "/run.zarr/labels"))
    }

    /// `evaluate --array` names an array of the run (it computed, then failed to write RUN/evaluation-../x.json).
    func testEvaluateArrayStaysInsideTheRun() async throws {
        let f = try await PredictFixture.make("eval-array")
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let run = f.dir + "/run.zarr"
        let p = try BrainmapCLI.run(["predict", "--volume", f.raw, "--model", f.weights, "--slices", "0", "--stride", "8",
                                     "--no-mask", "--outputs", "labels", "--out", run, "--quiet"], logDir: f.dir, tag: "predict")
        XCTAssertEqual(p.status, 0, p.stderr)
        for bad in ["../other.zarr/labels_clean", "/abs/labels", ".hidden", "labels_clean"] {
            try expect(["evaluate", run, "--annotations", f.dir + "/ph.zarr/areas", "--array", bad],
                       ["--array \(bad): '\(bad)' is not an array of", "labels"], dir: f.dir)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.hasPrefix("evaluation") }, [])
    }

    /// `phantom --anomaly` in the background would write an empty anomaly mask: refused before anything is written.
    func testPhantomAnomalyOffTissue() throws {
        let dir = PythonReference.tempDir("phantom-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try expect(["phantom", dir + "/p.zarr", "--shape", "3,400,1200", "--anomaly", "2,2,3"],
                   ["--anomaly 2,2,3: the disc lies in the background of every slice", "move it onto tissue"], dir: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/p.zarr"))
    }

    func testAnalysisAndCleanupFlags() throws {
        let dir = PythonReference.tempDir("analysis-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = dir + "/run.zarr"
        try expect(["cleanup", run, "--k", "0"], ["--k 0 is outside the accepted range 1…64"], dir: dir)
        try expect(["factorize", run, "--within", "CTX", "--erode", "-1"], ["--erode -1 is below the accepted minimum 0"], dir: dir)
        try expect(["cluster", run, "--within", "CTX", "--erode", "-1"], ["--erode -1 is below the accepted minimum 0"], dir: dir)
        try expect(["factorize", run, "--k", "65"], ["--k 65 is outside the accepted range 1…64"], dir: dir)
        try expect(["factorize", run, "--method", "nmf", "--nonneg", "split", "--k", "129"], ["--k 129 is outside the accepted range 1…128"], dir: dir)
        try expect(["factorize", run, "--method", "nmf", "--passes", "0"], ["--passes 0 is below the accepted minimum 1"], dir: dir)
        try expect(["cluster", run, "--k", "256"], ["--k 256 is outside the accepted range 2…255", "u1"], dir: dir)
        try expect(["cluster", run, "--k", "1"], ["--k 1 is outside the accepted range 2…255"], dir: dir)
        try expect(["cluster", run, "--k", "8", "--sample", "4"], ["--sample 4 is below the accepted minimum 8"], dir: dir)
        try expect(["cluster", run, "--on", "probabilities"], ["--on must be nmf, pca or features", "probabilities"], dir: dir)
        try expect(["cluster", run, "--smooth", "-1"], ["--smooth must be a finite number ≥ 0", "got -1"], dir: dir)
        try expect(["cluster", run, "--smooth", "inf"], ["--smooth must be a finite number ≥ 0"], dir: dir)
        try expect(["cluster", run, "--smooth", "96", "--smooth-across", "0"], ["--smooth-across must be a finite number > 0", "got 0"], dir: dir)
        try expect(["cluster", run, "--smooth", "96", "--smooth-across", "-8"], ["--smooth-across must be a finite number > 0", "got -8"], dir: dir)
        try expect(["cluster", run, "--smooth-across", "16"], ["--smooth-across needs --smooth"], dir: dir)
        try expect(["cluster", run, "--smooth", "8", "--smooth-across", "32"], ["--smooth-across 32.0: σ across the layers must be ≥ 0.5 and ≤ --smooth 8.0"], dir: dir)
        try expect(["cluster", run, "--smooth", "1e-300"], ["a σ below half a source pixel averages nothing"], dir: dir)
        try expect(["cluster", run, "--fit-steady", "0.7"], ["--fit-steady needs --smooth"], dir: dir)
        try expect(["cluster", run, "--smooth", "64", "--fit-steady", "1"], ["--fit-steady 1.0: a fraction of the pixels, above 0 and below 1"], dir: dir)
        try expect(["cluster", run, "--smooth", "64", "--fit-steady", "-0.5"], ["--fit-steady -0.5: a fraction of the pixels"], dir: dir)
        try expect(["factorize", run, "--method", "nmf", "--k", "3", "--sample", "2"], ["--sample 2 is below the accepted minimum 30", "10 rows per factor"], dir: dir)
        try expect(["cluster", run, "--within", "ctx"], ["--within ctx: must be one of CTX"], dir: dir)
        try expect(["cluster", run, "--rois", run, "--match", "3,3"], ["--match 3,3 names one slice twice"], dir: dir)
        try expect(["cluster", run, "--principal", "0"], ["--principal 0 is below the accepted minimum 1"], dir: dir)
        try expect(["cluster", run, "--covariance", "spherical"], ["--covariance must be full or diag", "spherical"], dir: dir)
        try expect(["cluster", run, "--covariance", "diag", "--method", "kmeans"], ["--covariance diag is a GMM's"], dir: dir)
        try expect(["slurm", "--dir", dir + "/plan", "--analysis-tasks", "3", "cluster", run, "--max-iter", "999"], ["1001 passes", "--max-iter 998 or fewer"], dir: dir)
        try expect(["slurm", "--dir", dir + "/plan", "--analysis-tasks", "3", "factorize", run, "--method", "nmf", "--passes", "1000"], ["1001 passes", "--passes 999 or fewer"], dir: dir)
        // Each array task would start the step over under the others; a server or a nested plan never ends; a line
        // break in a header value would run the rest of it as a command.
        try expect(["slurm", "--dir", dir + "/plan", "factorize", run, "--restart"], ["leave out --restart", "discard the others' work"], dir: dir)
        try expect(["slurm", "--dir", dir + "/plan", "serve", run], ["'serve' is not a step of a plan", "predict"], dir: dir)
        try expect(["slurm", "--dir", dir + "/plan", "--partition", "cpu\nrm -rf x", "cleanup", run], ["--partition", "give one non-empty line"], dir: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/plan/submit.sh"))
        // Benchmarks refuse sizes they cannot hold and times that are not times (they aborted or measured nothing).
        try expect(["bench", "gemm", "--no-peer", "--shape", "100000,100000,100000"], ["would take 111.76 GiB", "at most 8 GiB"], dir: dir)
        try expect(["bench", "gemm", "--seconds", "-1"], ["--seconds -1.0: give a time from above 0 to 3600"], dir: dir)
        try expect(["bench", "train", "--batch", "100000"], ["--batch 100000: give 1 to 1024"], dir: dir)
        try expect(["bench", "train", "--rounds", "0"], ["--rounds 0 is below the accepted minimum 1"], dir: dir)
        try expect(["bench", "train", "--threads", "-2"], ["--threads -2 is outside the accepted range 1…"], dir: dir)
        try expect(["bench", "cnn", "--threads", "100000"], ["--threads 100000 is outside the accepted range 1…", "cores"], dir: dir)
        try expect(["bench", "cnn", "--seconds", "-1"], ["--seconds -1.0: give a time from above 0 to 3600"], dir: dir)
        // The demo checks every flag before it writes the phantom.
        try expect(["demo", "--out", dir + "/demo", "--stride", "3"], ["--stride 3: use 1, 2, 4, 8 or 16"], dir: dir)
        try expect(["demo", "--out", dir + "/demo", "--epochs", "0"], ["--epochs 0 is below the accepted minimum 1"], dir: dir)
        try expect(["demo", "--out", dir + "/demo", "--lr", "nan"], ["--lr"], dir: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/demo"))
        try expect(["select-factors", run, "--rois", "r", "--lambda", "nan"], ["--lambda nan must be a finite number ≥ 0"], dir: dir)
        try expect(["select-factors", run, "--rois", "r", "--top", "-1"], ["--top -1 is below the accepted minimum 1"], dir: dir)
        try expect(["train", "--volume", "v", "--annotations", "a", "--train-slices", "0", "--val-slices", "-2", "--out", dir + "/m.safetensors"],
                   ["--val-slices: slice -2 is negative"], dir: dir)
    }
}
