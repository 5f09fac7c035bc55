import XCTest
@testable import Run
import Foundation

final class ManifestTests: XCTestCase {
    func testParametersNameEachDifference() {
        let p = Parameters([("k", "5"), ("method", "pca")])
        XCTAssertEqual(p.differences(from: ["k": "15", "method": "pca", "seed": "1"]),
                       ["k: the run has 15, this command has 5", "seed: the run has 1, this command has (absent)"])
    }

    /// A chunk rewritten in a nested key's folder (zarr v3's c/0/0/0: zarr-python replaces the file there) changes
    /// the source's version; so does a new level of an OME-Zarr group. Nothing changed: the same version.
    func testNestedChunkRewriteChangesTheSourceVersion() throws {
        let dir = NSTemporaryDirectory() + "nested-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/rois/c/0/0", withIntermediateDirectories: true)
        try Data("{\"zarr_format\": 3}".utf8).write(to: URL(fileURLWithPath: dir + "/rois/zarr.json"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/rois/c/0/0/0"))
        let v1 = Run.sourceVersion(dir + "/rois")
        XCTAssertEqual(Run.sourceVersion(dir + "/rois"), v1)
        usleep(10_000)
        try Data([9, 9, 9]).write(to: URL(fileURLWithPath: dir + "/rois/c/0/0/0.tmp"))
        XCTAssertEqual(rename(dir + "/rois/c/0/0/0.tmp", dir + "/rois/c/0/0/0"), 0)
        let v2 = Run.sourceVersion(dir + "/rois")
        XCTAssertNotEqual(v2, v1, "a rewritten nested chunk went unnoticed")
        usleep(10_000)
        try fm.createDirectory(atPath: dir + "/rois/c/1/0", withIntermediateDirectories: true)
        XCTAssertNotEqual(Run.sourceVersion(dir + "/rois"), v2)
    }

    /// A source typed relative, with `./` or a trailing `/`, is one parameter and one input, not a change.
    func testSourceSpellingsAreOne() {
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertEqual(Run.canonicalSource("ph.zarr/areas"), cwd + "/ph.zarr/areas")
        XCTAssertEqual(Run.canonicalSource("./ph.zarr/areas/"), cwd + "/ph.zarr/areas")
        XCTAssertEqual(Run.canonicalSource(cwd + "/x/../ph.zarr/areas"), cwd + "/ph.zarr/areas")
        XCTAssertEqual(Run.canonicalSource("s3://bucket/a/../b"), "s3://bucket/a/../b")
        XCTAssertEqual(Run.canonicalSource("./v.zarr?level=1"), cwd + "/v.zarr?level=1")
    }
}

final class MigrationTests: XCTestCase {
    /// A run written by brainmap 0.2 (format 1: predict's identity, a journal, cleanup.json): predict keeps its
    /// journal and lineage; the other arrays are not trusted until their step runs again.
    func testFormatOneRunIsMigrated() throws {
        let run = NSTemporaryDirectory() + "/brainmap-migrate-\(UUID().uuidString)/run.zarr"
        defer { try? FileManager.default.removeItem(atPath: (run as NSString).deletingLastPathComponent) }
        try FileManager.default.createDirectory(atPath: run + "/journal", withIntermediateDirectories: true)
        try Data(#"{"format_version": 1, "identity": {"stride": "2", "mode": "dense"}, "blocks": {"grid": [2, 2, 3]}, "model": "m.safetensors"}"#.utf8)
            .write(to: URL(fileURLWithPath: run + "/run.json"))
        try Data("done 0\ndone 7\ndone 8\ndone 1".utf8).write(to: URL(fileURLWithPath: run + "/journal/shard-0-of-1.log"))
        for a in ["labels", "labels_clean"] {
            try FileManager.default.createDirectory(atPath: run + "/" + a, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: URL(fileURLWithPath: run + "/\(a)/.zarray"))
        }
        let r = try Run.open(run)
        XCTAssertEqual(r.stride, 2)
        XCTAssertEqual(r.manifest.steps["predict"]?.directory, "journal")
        XCTAssertEqual(Set(r.predictedSliceVersions().keys), [0, 1], "blocks 0 and 7, 8 (6 per slice); the torn last line is ignored")
        XCTAssertEqual(r.manifest.arrays["labels"]?.generation, 1)
        XCTAssertEqual(try r.arrayPath("labels"), run + "/labels")
        XCTAssertThrowsError(try r.arrayPath("labels_clean")) { XCTAssertTrue("\($0)".contains("older brainmap"), "\($0)") }
        XCTAssertThrowsError(try r.arrayPath("../other.zarr/labels")) { XCTAssertTrue("\($0)".contains("is not an array of"), "\($0)") }
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/run.json"))) as! [String: Any]
        XCTAssertEqual(saved["format_version"] as? Int, 2)
    }
}

final class StepRecordTests: XCTestCase {
    /// Advice names the run it is given, not the one the command was typed for (a copied or moved run); a path that
    /// only starts like the old one is left alone.
    func testCommandLinePointsAtTheRunItIsIn() {
        let r = StepRecord(command: "factorize", parameters: [:], generation: 1, inputs: [:], outputs: ["pca"], directory: ".brainmap/pca-g1",
                           info: ["command_line": "brainmap factorize /d/r1.zarr --k 5 --mask /d/r1.zarr.mask", "run_path": "/d/r1.zarr"],
                           complete: true, freshRestart: false, updated: "")
        XCTAssertEqual(r.commandLine(at: "/e/w.zarr"), "brainmap factorize /e/w.zarr --k 5 --mask /d/r1.zarr.mask")
        XCTAssertEqual(r.commandLine(at: "/d/r1.zarr"), "brainmap factorize /d/r1.zarr --k 5 --mask /d/r1.zarr.mask")
    }

    /// Paths typed relative are recorded absolute (status may run from elsewhere: the probe's suggested
    /// `--mask m1.zarr` named nothing from /); values that are not existing paths stay as typed.
    func testRecordedPathsAreAbsolute() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cmdline-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/ph.zarr/layers", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let was = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir)
        defer { FileManager.default.changeCurrentDirectoryPath(was) }
        let line = Run.commandLine(["/x/brainmap", "cluster", "ph.zarr", "--k", "3", "--rois", "ph.zarr/layers", "--mask=./ph.zarr",
                                    "--name", "clusters_a", "--shard", "1/2", "--restart", "absent.zarr", "CTX"])
        let abs = URL(fileURLWithPath: dir).standardizedFileURL.path
        XCTAssertEqual(line, "brainmap cluster \(abs)/ph.zarr --k 3 --rois \(abs)/ph.zarr/layers --mask=\(abs)/ph.zarr --name clusters_a absent.zarr CTX")
        XCTAssertEqual(Run.commandLine(["brainmap", "cluster", "myrun", "--k", "3"], run: "myrun"), "brainmap cluster \(abs)/myrun --k 3")
        // A record of such a line points at the run status is given, relative or not.
        let r = StepRecord(command: "cluster", parameters: [:], generation: 1, inputs: [:], outputs: ["clusters"], directory: ".brainmap/clusters-g1",
                           info: ["command_line": line, "run_path": abs + "/ph.zarr"], complete: true, freshRestart: false, updated: "")
        XCTAssertEqual(r.commandLine(at: "ph.zarr"), "brainmap cluster ph.zarr --k 3 --rois \(abs)/ph.zarr/layers --mask=\(abs)/ph.zarr --name clusters_a absent.zarr CTX")
    }
}
