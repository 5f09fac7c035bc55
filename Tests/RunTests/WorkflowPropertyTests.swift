import Foundation
import XCTest
import Analysis
import NeuralNet
import Pipeline
import Run
import TestSupport
import VolumeStore

/// Random sequences of the steps users run on one run (predict slices in 1–3 shards, add slices, cleanup with
/// another k, factorize with k 3 or 5, cluster with another mask, --restart): after every step, the array it wrote
/// is byte-identical to the same step run from scratch on the same inputs, or the step was refused with a message
/// naming what is stale. BRAINMAP_WORKFLOW_SEQUENCES sets the count (CI: 30; tools/soak_workflow.sh runs more).
final class WorkflowPropertyTests: XCTestCase {
    /// Reference runs from scratch, by predicted slices (predict is the expensive part; each reference step copies one).
    final class References {
        let f: WorkflowFixture
        var predicted: [[Int]: String] = [:]
        init(_ f: WorkflowFixture) { self.f = f }

        func predictRun(_ slices: Set<Int>) async throws -> String {
            let key = slices.sorted()
            if let r = predicted[key] { return r }
            let r = f.dir + "/ref-" + key.map(String.init).joined(separator: "_") + ".zarr"
            try await f.predict(r, slices: key)
            predicted[key] = r
            return r
        }

        /// A fresh copy of the reference prediction to run one more step on.
        func copy(_ slices: Set<Int>) async throws -> String {
            let src = try await predictRun(slices)
            let dst = f.dir + "/scratch-\(UUID().uuidString).zarr"
            try FileManager.default.copyItem(atPath: src, toPath: dst)
            return dst
        }
    }

    func testRandomWorkflowsMatchFromScratch() async throws {
        let count = Int(ProcessInfo.processInfo.environment["BRAINMAP_WORKFLOW_SEQUENCES"] ?? "30") ?? 30
        let firstSeed = UInt64(ProcessInfo.processInfo.environment["BRAINMAP_WORKFLOW_SEED"] ?? "1") ?? 1
        let f = try await WorkflowFixture.make("workflow")
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let refs = References(f)
        var refusals = 0, steps = 0
        var seconds: [String: Double] = [:]
        let t0 = Date()
        for seed in firstSeed..<(firstSeed + UInt64(count)) {
            var rng = SeededRandom(seed: seed)
            let run = f.dir + "/run-\(seed).zarr"
            var predicted = Set<Int>()
            var pcaK: Int?           // the last factorize that finished, if it is current
            var pcaCurrent = false   // pca computed from the predicted slices as they are now
            var trace: [String] = []
            for _ in 0..<(4 + rng.next(below: 4)) {
                let op = predicted.isEmpty ? 0 : rng.next(below: 6)
                steps += 1
                let started = Date()
                defer { seconds[["predict", "cleanup", "cleanup", "pca", "cluster", "cluster"][op], default: 0] += Date().timeIntervalSince(started) }
                switch op {
                case 0:   // predict 1–2 slices (new or already there) in 1–3 shards
                    let slices = Set((0..<(1 + rng.next(below: 2))).map { _ in rng.next(below: WorkflowFixture.shape[0]) })
                    let shards = 1 + rng.next(below: 3)
                    trace.append("predict \(slices.sorted()) in \(shards) shards")
                    try await f.predict(run, slices: slices.sorted(), shards: shards)
                    if !slices.isSubset(of: predicted) { pcaCurrent = false }
                    predicted.formUnion(slices)
                    for name in ["labels", "features", "probabilities", "entropy"] {
                        WorkflowFixture.assertSame(run + "/" + name, try await refs.predictRun(predicted) + "/" + name, "seed \(seed) \(trace): \(name)")
                    }
                case 1, 2:   // cleanup, k 3 or 5, sometimes --restart
                    let k = [3, 5][rng.next(below: 2)], restart = rng.next(below: 4) == 0
                    trace.append("cleanup k=\(k)\(restart ? " --restart" : "")")
                    _ = try await f.cleanup(run, k: k, restart: restart)
                    let ref = try await refs.copy(predicted)
                    _ = try await f.cleanup(ref, k: k)
                    WorkflowFixture.assertSame(run + "/labels_clean", ref + "/labels_clean", "seed \(seed) \(trace)")
                case 3:   // factorize k 3 or 5, sometimes --restart
                    let k = [3, 5][rng.next(below: 2)], restart = rng.next(below: 4) == 0
                    trace.append("pca k=\(k)\(restart ? " --restart" : "")")
                    _ = try await f.pca(run, k: k, restart: restart)
                    pcaK = k; pcaCurrent = true
                    let ref = try await refs.copy(predicted)
                    _ = try await f.pca(ref, k: k)
                    WorkflowFixture.assertSame(run + "/pca", ref + "/pca", "seed \(seed) \(trace)")
                default:   // cluster on pca, all predicted pixels or only CTX (another mask)
                    let within = rng.next(below: 2) == 0
                    trace.append("cluster within=\(within)")
                    do {
                        _ = try await f.cluster(run, within: within)
                        guard let k = pcaK, pcaCurrent else { XCTFail("seed \(seed) \(trace): cluster on a missing or stale pca must be refused"); continue }
                        let ref = try await refs.copy(predicted)
                        _ = try await f.pca(ref, k: k)
                        _ = try await f.cluster(ref, within: within)
                        WorkflowFixture.assertSame(run + "/clusters", ref + "/clusters", "seed \(seed) \(trace)")
                    } catch {
                        let m = "\(error)"
                        if pcaK != nil && pcaCurrent && !m.contains("pixels") {
                            XCTFail("seed \(seed) \(trace): cluster on a current pca refused: \(m)")
                        }
                        XCTAssertTrue(m.contains("pca") || m.contains("pixels"), "seed \(seed) \(trace): the refusal must name what is stale or missing: \(m)")
                        refusals += 1
                    }
                }
            }
            try? FileManager.default.removeItem(atPath: run)
        }
        print("workflow property: \(count) sequences, \(steps) steps, \(refusals) refused as stale or missing; "
              + String(format: "%.0f s, of which ", Date().timeIntervalSince(t0)) + seconds.keys.sorted().map { String(format: "%@ %.1f s", $0, seconds[$0]!) }.joined(separator: ", "))
    }
}
