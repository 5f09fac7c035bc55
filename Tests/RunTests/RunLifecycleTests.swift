import Foundation
import XCTest
import Analysis
import NeuralNet
import Pipeline
@testable import Run
import TestSupport
import VolumeStore

/// The cases of issue 16, each reproduced: steps that compose on one run, lineage, whole-array replacement,
/// crash-safe --restart and swaps.
final class RunLifecycleTests: XCTestCase {
    var f: WorkflowFixture!
    override func setUp() async throws { f = try await WorkflowFixture.make("lifecycle-\(name.filter(\.isLetter))") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: f.dir) }

    /// Predict resumes and adds slices after cleanup, factorize and cluster touched the run; the analysis then says
    /// what is stale and recomputes it from scratch (saying why); a new --k replaces pca whole.
    func testStepsComposeAndStaleResultsAreRecomputed() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0, 1])
        _ = try await f.cleanup(run, k: 3)
        _ = try await f.pca(run, k: 5)
        _ = try await f.cluster(run, within: false)
        try await f.predict(run, slices: [2])     // once refused: ".zattrs differs from what these parameters write"
        let st = try RunStatus.of(try Run.open(run))
        XCTAssertEqual(st.steps.first { $0.name == "pca" }?.stale, true)
        XCTAssertEqual(st.steps.first { $0.name == "clusters" }?.stale, true, "clusters reads the stale pca")
        XCTAssertEqual(st.steps.first { $0.name == "cleanup" }?.staleUnits, ["2"], "slice 2 was cleaned while not predicted; 0 and 1 did not change")
        XCTAssertTrue(st.next.contains { $0.hasPrefix("pca") }, "\(st.next)")
        // cluster refuses the stale pca, naming it and the command that refreshes it.
        do { _ = try await f.cluster(run, within: false); XCTFail("a stale pca must be refused") }
        catch { XCTAssertTrue("\(error)".contains("pca is stale") && "\(error)".contains("factorize"), "\(error)") }
        // factorize sees the new slice: from scratch, saying why; equal to a run made in one go.
        let p = try await f.pca(run, k: 5)
        XCTAssertTrue(p.notes.joined().contains("inputs of pca changed"), "\(p.notes)")
        let ref = f.dir + "/ref.zarr"
        try await f.predict(ref, slices: [0, 1, 2])
        _ = try await f.pca(ref, k: 5)
        WorkflowFixture.assertSame(run + "/pca", ref + "/pca", "pca after slices were added")
        // Another k: pca is replaced whole (never k 5 chunks under k 3 metadata); cluster --on pca reads it.
        let k3 = try await f.pca(run, k: 3)
        XCTAssertTrue(k3.notes.joined().contains("k: the run has 5, this command has 3"), "\(k3.notes)")
        _ = try await f.pca(ref, k: 3)
        WorkflowFixture.assertSame(run + "/pca", ref + "/pca", "pca after --k 3")
        let c = try await f.cluster(run, within: false, name: "clusters_pcs")
        XCTAssertGreaterThan(c.rows, 0)
        // Re-running an up-to-date step recomputes nothing.
        let same = try await f.pca(run, k: 3)
        XCTAssertTrue(same.upToDate)
        // A command that would find no pixels (slice 3 was never predicted) is refused before it touches the step:
        // pca stays complete and current, and what reads it stays fresh.
        let before = try Run.open(run).manifest.steps["pca"]
        var empty = FactorizeOptions(run: run); empty.method = .pca; empty.k = 4; empty.slices = [3]
        do { _ = try await FactorizeJob(options: empty).run(); XCTFail("no pixels must be refused") }
        catch { XCTAssertTrue("\(error)".contains("fewer than 2 predicted pixels") && "\(error)".contains("nothing was changed"), "\(error)") }
        let after = try Run.open(run).manifest.steps["pca"]
        XCTAssertEqual(after?.generation, before?.generation); XCTAssertEqual(after?.complete, true)
        XCTAssertFalse(try RunStatus.of(try Run.open(run)).steps.first { $0.name == "clusters_pcs" }?.stale ?? true)
        // cleanup: the new slice is cleaned, the others kept; labels_clean equals a from-scratch cleanup.
        let cl = try await f.cleanup(run, k: 3)
        XCTAssertEqual(cl.slicesDone, 1, "slice 2, predicted since it was cleaned; 0, 1 and 3 kept")
        XCTAssertEqual(cl.slicesStale, 1); XCTAssertEqual(cl.slicesAlreadyDone, 3)
        _ = try await f.cleanup(ref, k: 3)
        WorkflowFixture.assertSame(run + "/labels_clean", ref + "/labels_clean", "labels_clean after slices were added")
        // The group's OME attributes list every array's image group once, label maps first.
        let attrs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/.zattrs"))) as! [String: Any]
        let names = attrs["labels"] as! [String]
        XCTAssertEqual(Set(names), ["labels", "labels_clean", "clusters", "clusters_pcs", "probabilities", "entropy", "features", "pca"])
        XCTAssertEqual(names.first, "labels")
        XCTAssertNil(attrs["multiscales"], "no single arrays left in the root")
        // Every output's pyramid (24 × 32 in blocks of 16: a second level of 12 × 16) after all these steps equals
        // numpy's reference; ome-zarr-py opens each as a layer, each clustering with its k = 3 cluster colours (not the
        // classes'); every level is placed at its pixels' centres.
        let pyr = try PythonReference.run("tools/interop/pyramid_check.py", ["run", run])
        XCTAssertEqual(pyr.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, 8, pyr)
        XCTAssertFalse(pyr.contains("MISMATCH"), pyr)
        XCTAssertTrue(pyr.contains("napari clusters_pcs label levels 2 colors 3"), pyr)
        XCTAssertTrue(pyr.contains("ok labels_clean level 1 (4, 12, 16) uint8 mode"), pyr)
        XCTAssertTrue(pyr.contains("ok pca level 1 (3, 4, 12, 16) float32 mean"), pyr)
        XCTAssertTrue(pyr.contains("napari clusters label levels 2 colors 3"), pyr)
    }

    /// Cleanup on a partly predicted slice, then predict finishes it: the slice is cleaned again (once it was
    /// journaled as done for ever).
    func testCleanupOfAPartlyPredictedSliceIsRedoneWhenPredictFinishesIt() async throws {
        let run = f.dir + "/run.zarr", ref = f.dir + "/ref.zarr"
        _ = try await PredictJob(options: f.predictOptions(run, slices: [1], shard: try Shard(index: 0, count: 2)), context: SourceOptions()).run()
        _ = try await f.cleanup(run, k: 3)
        _ = try await PredictJob(options: f.predictOptions(run, slices: [1], shard: try Shard(index: 1, count: 2)), context: SourceOptions()).run()
        let again = try await f.cleanup(run, k: 3)
        XCTAssertEqual(again.slicesStale, 1); XCTAssertEqual(again.slicesDone, 1)
        try await f.predict(ref, slices: [1])
        _ = try await f.cleanup(ref, k: 3)
        WorkflowFixture.assertSame(run + "/labels_clean", ref + "/labels_clean", "labels_clean of a slice predicted in two goes")
    }

    /// select-factors accepts a run factorized --within (its pixels by construction); cluster --match on a slice
    /// without pixels names it; --rois is part of cluster's parameters; cluster --restart recomputes.
    func testAnalysisCorners() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0, 1])
        // The class the (random) model predicts most, as the --within class.
        let labels = try await VolumeSource.open(run + "/labels").read(Box([0..<2, 0..<24, 0..<32]))
        let common = (1...6).max { c1, c2 in labels.filter { $0 == c1 }.count < labels.filter { $0 == c2 }.count }!
        var n = FactorizeOptions(run: run); n.method = .nmf; n.k = 3; n.sample = 500; n.passes = 1
        n.mask = .within(classID: UInt8(common), erode: 0)
        _ = try await FactorizeJob(options: n).run()
        let sel = try await SelectFactorsJob.run(SelectFactorsOptions(run: run, rois: f.dir + "/ph.zarr/layers"))
        XCTAssertFalse(sel.picks.isEmpty)
        var c = ClusterOptions(run: run); c.on = "nmf"; c.k = 2; c.maxIter = 10
        c.rois = f.dir + "/ph.zarr/layers"; c.match = (0, 3)
        do { _ = try await ClusterJob(options: c).run(); XCTFail("slice 3 was never predicted") }
        catch { XCTAssertTrue("\(error)".contains("slice 3 was never predicted"), "\(error)") }
        c.match = (0, 1)
        // The NMF covers the class only: clustering all tissue on it is refused, within the class it runs.
        do { _ = try await ClusterJob(options: c).run(); XCTFail("tissue beyond the factorized class") }
        catch { XCTAssertTrue("\(error)".contains("was factorized under the mask 'labels == \(common)' only"), "\(error)") }
        c.mask = n.mask
        _ = try await ClusterJob(options: c).run()
        c.rois = f.dir + "/ph.zarr/areas"
        let other = try await ClusterJob(options: c).run()
        XCTAssertTrue(other.notes.joined().contains("rois"), "other --rois is another clustering: \(other.notes)")
        c.restart = true
        let restarted = try await ClusterJob(options: c).run()
        XCTAssertFalse(restarted.upToDate)
        XCTAssertEqual(restarted.distributions, other.distributions)
    }

    /// Shards cannot hang: a shard without pixels publishes valid statistics; a lone shard says which shard it waits
    /// for and gives up after --wait-timeout; a damaged or foreign file from another shard is an error; a shard whose
    /// heartbeat stopped is reported.
    func testShardsCannotHang() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0])
        // 4 blocks per slice at this grid; with 5 shards shard 4 owns none.
        let one = try await f.pca(run, k: 3)
        let results = try await withThrowingTaskGroup(of: FactorizeSummary.self) { g in
            let fx = f!
            for i in 0..<5 { let s = try Shard(index: i, count: 5); g.addTask { try await fx.pca(run, k: 3, restart: true, shard: s) } }
            var out: [FactorizeSummary] = []
            for try await s in g { out.append(s) }
            return out
        }
        for r in results { for (a, b) in zip(r.explainedVarianceRatio, one.explainedVarianceRatio) { XCTAssertEqual(a, b, accuracy: 1e-12) } }

        // A lone shard (1/2): named wait, then the timeout's message.
        let lone = f.dir + "/lone.zarr"
        try await f.predict(lone, slices: [0])
        var o = FactorizeOptions(run: lone); o.k = 3; o.shard = try Shard(index: 1, count: 2); o.waitTimeout = 1.5
        var phases: [String] = []
        do { _ = try await FactorizeJob(options: o).run { phases.append($0.phase) }; XCTFail("a lone shard must not wait for ever") }
        catch {
            XCTAssertTrue("\(error)".contains("--wait-timeout") && "\(error)".contains("shard 0/2 never started"), "\(error)")
        }
        XCTAssertTrue(phases.contains("waiting for shard 0/2 to publish 'pca-moments'"), "\(phases)")

        // A damaged file of the other shard is an error, not skipped.
        let dir = try Run.open(lone).manifest.steps["pca"]!.directory
        let foreign = lone + "/" + dir + "/exchange/pca-moments-shard-0-of-2.json"
        try Data("{\"parameters\": {}".utf8).write(to: URL(fileURLWithPath: foreign))
        do { _ = try await FactorizeJob(options: o).run(); XCTFail("a damaged shard file must be an error") }
        catch { XCTAssertTrue("\(error)".contains("pca-moments-shard-0-of-2.json is damaged"), "\(error)") }

        // A shard whose heartbeat is old and which has not published: reported as stopped.
        try FileManager.default.removeItem(atPath: foreign)
        try Data("\(Date().timeIntervalSince1970 - 600)\n".utf8).write(to: URL(fileURLWithPath: lone + "/" + dir + "/exchange/heartbeat-shard-0-of-2"))
        o.waitTimeout = 30
        do { _ = try await FactorizeJob(options: o).run(); XCTFail("a dead shard must be reported") }
        catch { XCTAssertTrue("\(error)".contains("shard 0/2 stopped"), "\(error)") }
    }

    /// A swap interrupted at each of its points is finished by the next process that opens the run.
    func testInterruptedSwapIsFinishedOnOpen() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0])
        _ = try await f.pca(run, k: 3)
        let want3 = ManifestFiles.files(run + "/pca")
        // Generation 2 (k 5) fully written under staging, then a crash at each point of the swap.
        let ref = f.dir + "/ref.zarr"
        try await f.predict(ref, slices: [0])
        _ = try await f.pca(ref, k: 5)
        let want5 = ManifestFiles.files(ref + "/pca")
        for point in 0..<3 {
            let r = try Run.open(run)
            let g = r.manifest.arrays["pca"]!.generation + 1
            let staged = run + "/" + r.stagingPath("pca", g)
            try FileManager.default.createDirectory(atPath: (staged as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: ref + "/pca", toPath: staged)
            try r.update { m in m.arrays["pca"]!.staging = g; m.arrays["pca"]!.stagingLevels = 2; m.arrays["pca"]!.stagingReady = point > 0 }
            if point == 2 {   // the old array already moved aside when the process died
                try FileManager.default.createDirectory(atPath: r.trash, withIntermediateDirectories: true)
                try FileManager.default.moveItem(atPath: run + "/pca", toPath: r.trash + "/pca-old")
            }
            let reopened = try Run.open(run)
            if point == 0 {
                // Not marked ready: the staged copy is an unfinished generation; the old array stays in place.
                XCTAssertEqual(ManifestFiles.files(run + "/pca"), want3)
                try reopened.update { m in m.arrays["pca"]!.staging = nil }
                try FileManager.default.removeItem(atPath: staged)
            } else {
                XCTAssertEqual(ManifestFiles.files(run + "/pca"), want5, "swap interrupted at point \(point)")
                XCTAssertEqual(reopened.manifest.arrays["pca"]!.generation, g)
                XCTAssertNil(reopened.manifest.arrays["pca"]!.staging)
                XCTAssertFalse(FileManager.default.fileExists(atPath: staged))
                XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: reopened.trash)) ?? [], [], "the old array is deleted")
            }
        }
    }

    /// kill -9 at random instants of `predict --restart` (which moves the old run aside in one rename) and of the
    /// re-run after it: the run always resumes to the bytes of an uninterrupted run.
    func testKillNineInsideRestartThenResume() async throws {
        let ref = f.dir + "/ref.zarr"
        try await f.predict(ref, slices: [0, 1, 2, 3])
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0, 1, 2, 3])
        _ = try await f.cleanup(run, k: 3)
        var rng = SeededRandom(seed: 42)
        var killedAfterRestart = 0
        for round in 0..<4 {
            let before = try Run.inspect(run).manifest.steps["predict"]!.generation
            let p = try BrainmapCLI.start(f.predictArgs(run, slices: [0, 1, 2, 3]) + ["--restart"], logDir: f.dir, tag: "restart-\(round)")
            if round < 3 {
                // Kill at a random instant after the restart took effect (a new generation of predict).
                for _ in 0..<1200 where p.isRunning && ((try? Run.inspect(run).manifest.steps["predict"]?.generation) ?? before) == before { usleep(20_000) }
                usleep(UInt32(rng.next(below: 80_000)))
                if p.isRunning { killedAfterRestart += 1 }
            } else {
                usleep(UInt32(rng.next(below: 600_000)))   // anywhere, the restart itself included
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        XCTAssertGreaterThan(killedAfterRestart, 0, "no kill landed after a restart took effect")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/labels_clean"), "a restart discards every step's arrays")
        let done = try BrainmapCLI.run(f.predictArgs(run, slices: [0, 1, 2, 3]), logDir: f.dir, tag: "resume")
        XCTAssertEqual(done.status, 0, done.stderr)
        for name in ["labels", "features", "probabilities", "entropy"] { WorkflowFixture.assertSame(run + "/" + name, ref + "/" + name, name) }
        XCTAssertEqual(try Run.inspect(run).manifest.steps.keys.sorted(), ["predict"], "the old run's steps are gone")

        // A restart says which results it discarded besides the predictions.
        _ = try await f.cleanup(run, k: 3)
        let again = try BrainmapCLI.run(f.predictArgs(run, slices: [0]) + ["--restart"], logDir: f.dir, tag: "restart-note")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("note: --restart: discarded every result computed from the old predictions too: cleanup"), again.stdout)
    }

    /// `brainmap status` as a user reads it.
    func testStatusCommand() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0])
        _ = try await PredictJob(options: f.predictOptions(run, slices: [1], shard: try Shard(index: 0, count: 2)), context: SourceOptions()).run()
        _ = try await f.pca(run, k: 3)
        try await f.predict(run, slices: [2])
        let r = try BrainmapCLI.run(["status", run], logDir: f.dir, tag: "status")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("predicted slices: 2 complete (0, 2); partly predicted: slice 1 (2/4 blocks)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("predict  [partial slices]") && r.stdout.contains("predict (slices 1 are partly predicted)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("pca  [STALE]"), r.stdout)
        XCTAssertTrue(r.stdout.contains("predict generation 1, 2 levels"), r.stdout)
        XCTAssertTrue(r.stdout.contains("next:") && r.stdout.contains("pca (its inputs changed)"), r.stdout)
        let j = try BrainmapCLI.run(["status", run, "--json"], logDir: f.dir, tag: "status-json")
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((doc["steps"] as! [[String: Any]]).first { $0["name"] as? String == "pca" }?["stale"] as? Bool, true)
        // cleanup names the slices predict has not finished.
        let cleaned = try await f.cleanup(run, k: 3)
        XCTAssertTrue(cleaned.notes.contains { $0.hasPrefix("partly predicted: slice 1 (2/4 blocks) — cleaned as predicted so far, and again once predict has finished; not predicted: slices 3 — their labels_clean stays empty") }, "\(cleaned.notes)")
        let bad = try BrainmapCLI.run(["status", f.dir], logDir: f.dir, tag: "status-bad")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("is not a brainmap run"), bad.stderr)
    }

    /// Predict adds a slice while a step runs as map tasks and reduces (pass 1 merged): the next map task starts a
    /// new generation over the new inputs, saying why, instead of refusing every task (a Slurm plan could not finish),
    /// and the map/reduce chain then finishes to what one process computes.
    func testMapTasksStartOverWhenPredictAddsSlices() async throws {
        let run = f.dir + "/run.zarr", ref = f.dir + "/ref.zarr"
        try await f.predict(run, slices: [0, 1])
        func pass(_ p: PassMode) async throws -> [String] {
            do { _ = try await f.pca(run, k: 3, pass: p); return [] } catch let end as PassEnd { return end.notes }
        }
        _ = try await pass(.map)
        _ = try await pass(.reduce(tasks: 1))
        try await f.predict(run, slices: [2])
        let notes = try await pass(.map)
        XCTAssertTrue(notes.joined().contains("inputs of pca changed"), "\(notes)")
        _ = try await pass(.reduce(tasks: 1))
        _ = try await pass(.map)
        _ = try await pass(.reduce(tasks: 1))
        XCTAssertEqual(try Run.open(run).manifest.steps["pca"]?.complete, true)
        try await f.predict(ref, slices: [0, 1, 2])
        _ = try await f.pca(ref, k: 3)
        WorkflowFixture.assertSame(run + "/pca", ref + "/pca", "pca by map tasks after a slice was added")
    }

    /// While a command works on a step (it holds the step's lock), another command cannot start a new generation of
    /// it under it, nor `predict --restart` discard the run; once it ends, they can. A run.json of another tool is
    /// never taken for a run (and never deleted).
    func testRunningStepsAreNotPulledFromUnderEachOther() async throws {
        let run = f.dir + "/run.zarr"
        try await f.predict(run, slices: [0])
        var working: StepSession? = try Run.open(run).begin(step: "pca", command: "factorize", parameters: Parameters([("k", "3")]),
                                                            inputs: [:], outputs: ["pca"])
        do { _ = try Run.open(run).begin(step: "pca", command: "factorize", parameters: Parameters([("k", "5")]), inputs: [:], outputs: ["pca"]); XCTFail("k 5 under a running k 3") }
        catch { XCTAssertTrue("\(error)".contains("another brainmap factorize is working on pca") && "\(error)".contains("k: the run has 3, this command has 5"), "\(error)") }
        var o = f.predictOptions(run, slices: [0]); o.restart = true
        do { _ = try await PredictJob(options: o, context: SourceOptions()).run(); XCTFail("--restart under a running step") }
        catch { XCTAssertTrue("\(error)".contains("--restart: a brainmap command is working on pca"), "\(error)") }
        XCTAssertNotNil(working)
        working = nil
        let next = try Run.open(run).begin(step: "pca", command: "factorize", parameters: Parameters([("k", "5")]), inputs: [:], outputs: ["pca"])
        XCTAssertEqual(next.generation, 2)

        let other = f.dir + "/other.zarr"
        try FileManager.default.createDirectory(atPath: other + "/precious", withIntermediateDirectories: true)
        try Data(#"{"tool": "x"}"#.utf8).write(to: URL(fileURLWithPath: other + "/run.json"))
        var p = f.predictOptions(other, slices: [0]); p.restart = true
        do { _ = try await PredictJob(options: p, context: SourceOptions()).run(); XCTFail("another tool's directory") }
        catch { XCTAssertTrue("\(error)".contains("is not a brainmap manifest"), "\(error)") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: other + "/precious"))
    }
}
