import Foundation
import XCTest
import Analysis
import NeuralNet
import Phantom
import Pipeline
import Run
import TestSupport
import VolumeStore

/// A small phantom and a model, and the steps of a run as a user runs them (in process; the kill -9 cases run the
/// CLI), each with the parameters the workflow tests vary.
struct WorkflowFixture {
    static let shape = [4, 96, 128]
    let dir: String, raw: String, model: String

    static func make(_ name: String) async throws -> WorkflowFixture {
        let dir = PythonReference.tempDir(name)
        try await PhantomWriter.write(to: dir + "/ph.zarr", shape: shape, seed: 5, chunks: [1, 64, 64], pyramidLevels: 1)
        try Safetensors.save(AreaClassifier.randomParameters(seed: 11), path: dir + "/w.safetensors")
        return WorkflowFixture(dir: dir, raw: dir + "/ph.zarr/raw", model: dir + "/w.safetensors")
    }

    func predictOptions(_ run: String, slices: [Int], shard: Shard = .all) -> PredictOptions {
        var o = PredictOptions(source: raw, model: model, out: run)
        o.slices = slices; o.stride = 4; o.block = 16; o.tile = 16; o.threads = 1; o.shard = shard; o.fc1 = .gemm
        return o
    }

    func predictArgs(_ run: String, slices: [Int], shard: Shard = .all) -> [String] {
        ["predict", "--volume", raw, "--model", model, "--out", run, "--slices", slices.map(String.init).joined(separator: ","),
         "--stride", "4", "--block", "16", "--tile", "16", "--fc1", "gemm", "--threads", "1", "--shard", "\(shard)", "--quiet"]
    }

    func predict(_ run: String, slices: [Int], shards: Int = 1) async throws {
        for i in 0..<shards { _ = try await PredictJob(options: predictOptions(run, slices: slices, shard: try Shard(index: i, count: shards)), context: SourceOptions()).run() }
    }

    func cleanup(_ run: String, k: Int, restart: Bool = false) async throws -> CleanupSummary {
        var o = CleanupOptions(run: run); o.k = k; o.restart = restart
        return try await CleanupJob(options: o).run()
    }

    func pca(_ run: String, k: Int, restart: Bool = false, shard: Shard = .all, pass: PassMode? = nil) async throws -> FactorizeSummary {
        var o = FactorizeOptions(run: run); o.method = .pca; o.k = k; o.restart = restart; o.shard = shard; o.waitTimeout = 60; o.pass = pass
        return try await FactorizeJob(options: o).run()
    }

    func cluster(_ run: String, within: Bool, restart: Bool = false, name: String = "clusters") async throws -> ClusterSummary {
        var o = ClusterOptions(run: run); o.on = "pca"; o.k = 3; o.maxIter = 20; o.restart = restart; o.name = name
        o.mask = within ? .within(classID: 1, erode: 0) : .predicted
        return try await ClusterJob(options: o).run()
    }

    static func files(_ array: String) -> [String: Data] { ManifestFiles.files(array) }

    static func assertSame(_ a: String, _ b: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let x = files(a), y = files(b)
        XCTAssertFalse(y.isEmpty, "\(what): the reference \(b) is empty", file: file, line: line)
        XCTAssertEqual(Set(x.keys), Set(y.keys), "\(what): other files than from scratch", file: file, line: line)
        for (k, v) in y where x[k] != v { XCTFail("\(what): \(k) differs from the same step run from scratch", file: file, line: line); return }
    }
}
