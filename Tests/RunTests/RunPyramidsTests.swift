import Foundation
import XCTest
import Pipeline
@testable import Run
import TestSupport
import VolumeStore

/// Runs an older brainmap wrote (single arrays at RUN/NAME, no levels in run.json) open as they are, and
/// `brainmap pyramid` converts them to what a new run holds, byte for byte; a conversion a crash interrupted
/// between its two renames is finished by the next open.
final class RunPyramidsTests: XCTestCase {
    func testOlderRunsOpenAndConvertToTheNewLayout() async throws {
        let f = try await WorkflowFixture.make("pyramids")
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let run = f.dir + "/run.zarr", old = f.dir + "/old.zarr"
        try await f.predict(run, slices: [1, 2])
        _ = try await f.cleanup(run, k: 3)
        // The layout before pyramids: level 0 at RUN/NAME, no levels recorded, no image groups.
        let fm = FileManager.default
        try fm.copyItem(atPath: run, toPath: old)
        var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: old + "/run.json"))) as! [String: Any]
        var arrays = doc["arrays"] as! [String: [String: Any]]
        for name in arrays.keys {
            try fm.moveItem(atPath: "\(old)/\(name)/0", toPath: "\(old)/\(name).level0")
            try fm.removeItem(atPath: "\(old)/\(name)")
            try fm.moveItem(atPath: "\(old)/\(name).level0", toPath: "\(old)/\(name)")
            arrays[name]!["levels"] = nil
        }
        doc["arrays"] = arrays
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: old + "/run.json"))
        let r = try Run.open(old)
        XCTAssertEqual(try r.arrayPath("labels"), old + "/labels")
        let labels = try await VolumeSource.open(try r.arrayPath("labels"))
        XCTAssertEqual(labels.shape, [4, 24, 32])
        let attrs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: old + "/.zattrs"))) as! [String: Any]
        XCTAssertEqual((attrs["multiscales"] as? [[String: Any]])?.count, 5, "single arrays keep their entries in the root")
        XCTAssertEqual(try RunStatus.of(r).arrays.first { $0.name == "labels" }?.levels, nil)

        // Converted: the same files as the run made with pyramids (chunks, levels, metadata, group attributes).
        let levels = try await r.buildPyramids(nil)
        XCTAssertEqual(levels["labels_clean"], 2)
        for name in arrays.keys { WorkflowFixture.assertSame(old + "/" + name, run + "/" + name, "\(name) converted") }
        XCTAssertEqual(fm.contents(atPath: old + "/.zattrs"), fm.contents(atPath: run + "/.zattrs"))
        XCTAssertEqual(try Run.open(old).arrayPath("labels"), old + "/labels/0")

        // A crash between the conversion's renames (level 0 moved into the built group, the group not yet in place)
        // is finished by the next open.
        try fm.createDirectory(atPath: old + "/.brainmap/pyramid", withIntermediateDirectories: true)
        try fm.moveItem(atPath: old + "/entropy", toPath: old + "/.brainmap/pyramid/entropy")
        arrays["entropy"]!["levels"] = nil
        var after = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: old + "/run.json"))) as! [String: Any]
        var recorded = after["arrays"] as! [String: [String: Any]]
        recorded["entropy"]!["levels"] = nil
        after["arrays"] = recorded
        try JSONSerialization.data(withJSONObject: after).write(to: URL(fileURLWithPath: old + "/run.json"))
        let reopened = try Run.open(old)
        XCTAssertEqual(reopened.manifest.arrays["entropy"]?.levels, 2)
        WorkflowFixture.assertSame(old + "/entropy", run + "/entropy", "entropy after a crash mid-conversion")

        // A level lost whole (removed by hand) is made again, metadata and chunks, not filled in without its .zarray.
        try fm.removeItem(atPath: old + "/labels_clean/1")
        _ = try await reopened.buildPyramids(["labels_clean"])
        WorkflowFixture.assertSame(old + "/labels_clean", run + "/labels_clean", "labels_clean after its level 1 was lost")
    }
}
