import Foundation
import XCTest
import TestSupport
import VolumeStore
@testable import Pipeline

/// predict from remote sources on loopback: nginx behind the fault-injecting proxy, and a fake BossDB. Transient
/// faults cost time, not data (outputs equal the local run's byte for byte); a permanent one stops the run with
/// the URL, resumable.
final class PredictRemoteTests: XCTestCase {
    var dir = "", raw = "", weights = ""
    var nginx: LoopbackServer!
    var local: [String: Data] = [:]

    func options(_ source: String, _ out: String) -> PredictOptions {
        var o = PredictOptions(source: source, model: weights, out: dir + "/" + out)
        o.slices = [1]; o.stride = 2; o.tile = 32; o.block = 32; o.mask = .none
        return o
    }

    func context(attempts: Int = 8) -> SourceOptions {
        var c = SourceOptions()
        var s = HTTPSettings(); s.lowSpeedSeconds = 1; s.maxConnections = 4
        c.fetcher = RemoteFetcher(client: HTTPClient(settings: s), stats: TransferStats())
        c.fetcher.maxAttempts = attempts; c.fetcher.baseDelay = 0.02; c.fetcher.maxDelay = 0.2
        return c
    }

    override func setUp() async throws {
        let f = try await PredictFixture.make("remote-predict")
        dir = f.dir; raw = f.raw; weights = f.weights
        _ = try await PredictJob(options: options(raw, "local.zarr"), context: SourceOptions()).run()
        local = PredictFixture.arrayFiles(dir + "/local.zarr")
        nginx = try LoopbackServer.nginx(root: dir)
    }

    override func tearDown() {
        nginx?.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func assertEqualToLocal(_ run: String, file: StaticString = #filePath, line: UInt = #line) {
        let got = PredictFixture.arrayFiles(dir + "/" + run)
        XCTAssertEqual(Set(got.keys), Set(local.keys), file: file, line: line)
        for (k, v) in local { XCTAssertEqual(got[k], v, "\(k) differs from the local run", file: file, line: line) }
    }

    func testThroughFaultsTheOutputsEqualTheLocalRun() async throws {
        let proxy = try LoopbackServer.faultProxy(upstream: nginx.url, ["--per-path", "2", "--stall-seconds", "2"])
        defer { proxy.stop() }
        let ctx = context()
        let s = try await PredictJob(options: options(proxy.url + "/ph.zarr/raw", "http.zarr"), context: ctx).run()
        assertEqualToLocal("http.zarr")
        XCTAssertGreaterThan(ctx.stats.retries, 5, ctx.stats.summary)
        XCTAssertEqual(ctx.stats.failures, 0)
        XCTAssertTrue(s.remote.contains("retries"), s.remote)
        // The same pixels through an OME-Zarr level given explicitly.
        _ = try await PredictJob(options: options(nginx.url + "/ph.zarr/raw?level=0", "level.zarr"), context: context()).run()
        assertEqualToLocal("level.zarr")
    }

    func testPermanentFaultStopsTheRunWithTheURLAndItResumes() async throws {
        let flag = dir + "/forbid"
        FileManager.default.createFile(atPath: flag, contents: nil)
        let proxy = try LoopbackServer.faultProxy(upstream: nginx.url, ["--faults", "", "--forbid", "raw/0/1.2.3", "--forbid-while", flag])
        defer { proxy.stop() }
        let o = options(proxy.url + "/ph.zarr/raw", "forbidden.zarr")
        do {
            _ = try await PredictJob(options: o, context: context(attempts: 3)).run()
            XCTFail("a 403 must stop the run")
        } catch {
            XCTAssertTrue("\(error)".contains(proxy.url + "/ph.zarr/raw/0/1.2.3") && "\(error)".contains("403"), "\(error)")
        }
        let before = try Run.open(dir + "/forbidden.zarr").done(step: "predict").count
        XCTAssertLessThan(before, 9 * 5 - 1)
        try FileManager.default.removeItem(atPath: flag)   // the operator fixes the server
        let s = try await PredictJob(options: o, context: context()).run()
        XCTAssertEqual(s.blocksAlreadyDone, before)
        assertEqualToLocal("forbidden.zarr")
    }

    func testBossDBSourceEqualsTheLocalRun() async throws {
        let boss = try LoopbackServer.fakeBossDB(array: raw + "/0", ["--collection", "lab", "--experiment", "ph", "--channel", "raw",
                                                                   "--token", "t0k"])
        defer { boss.stop() }
        var ctx = context(); ctx.bossdbHost = boss.url; ctx.bossdbToken = "t0k"
        _ = try await PredictJob(options: options("bossdb://lab/ph/raw", "boss.zarr"), context: ctx).run()
        assertEqualToLocal("boss.zarr")
        XCTAssertGreaterThan(ctx.stats.requests, 3, ctx.stats.summary)   // metadata, then cutouts (throttling: BossDBTests)
    }

    /// A credential in the source URL reaches the server but no message, summary or run.json.
    func testCredentialsInTheURLAreNotRecorded() async throws {
        let url = nginx.url.replacingOccurrences(of: "http://", with: "http://alice:pw123secret@") + "/ph.zarr/raw"
        let s = try await PredictJob(options: options(url, "cred.zarr"), context: context()).run()
        assertEqualToLocal("cred.zarr")
        let runJSON = try String(contentsOfFile: dir + "/cred.zarr/run.json", encoding: .utf8)
        XCTAssertFalse(runJSON.contains("pw123secret"), runJSON)
        XCTAssertTrue(runJSON.contains("://***@"), runJSON)
        XCTAssertFalse(s.remote.contains("pw123secret"))
        var bad = options(url.replacingOccurrences(of: "/ph.zarr/raw", with: "/nothing"), "cred2.zarr")
        bad.slices = [0]
        do { _ = try await PredictJob(options: bad, context: context()).run(); XCTFail("a missing source ran") }
        catch { XCTAssertFalse("\(error)".contains("pw123secret"), "\(error)") }
    }
}
