import Foundation
import XCTest
import TestSupport
@testable import NeuralNet

/// The start-up check that keeps OpenBLAS off its generic kernels: the policy, the CPU probe, and the real binary
/// re-executing itself.
final class BLASCoreTests: XCTestCase {
    static let avx512 = CPUFeatures(vendor: "GenuineIntel", avx: true, avx2fma: true, avx512: true)
    static let zen = CPUFeatures(vendor: "AuthenticAMD", avx: true, avx2fma: true)

    func testPolicy() {
        // A generic core on a better CPU is switched, to what OpenBLAS would pick on a CPU it recognises.
        XCTAssertEqual(BLASCore.decide(loaded: "Prescott", cpu: Self.avx512, request: "auto", userCoreType: nil), .select(core: "SkylakeX"))
        XCTAssertEqual(BLASCore.decide(loaded: "Haswell", cpu: Self.avx512, request: "auto", userCoreType: nil), .select(core: "SkylakeX"))
        var bf16 = Self.avx512; bf16.avx512bf16 = true
        XCTAssertEqual(BLASCore.decide(loaded: "Nehalem", cpu: bf16, request: "auto", userCoreType: nil), .select(core: "Cooperlake"))
        XCTAssertEqual(BLASCore.decide(loaded: "Core2", cpu: Self.zen, request: "auto", userCoreType: nil), .select(core: "Zen"))
        // The right core, an equally good one, or an unknown one: left alone.
        XCTAssertEqual(BLASCore.decide(loaded: "Zen", cpu: Self.zen, request: "auto", userCoreType: nil), .keep(note: nil))
        XCTAssertEqual(BLASCore.decide(loaded: "Haswell", cpu: Self.zen, request: "auto", userCoreType: nil), .keep(note: nil))
        XCTAssertEqual(BLASCore.decide(loaded: "NEOVERSEN1", cpu: CPUFeatures(), request: "auto", userCoreType: nil), .keep(note: nil))
        XCTAssertEqual(BLASCore.decide(loaded: "Prescott", cpu: CPUFeatures(vendor: "GenuineIntel"), request: "auto", userCoreType: nil), .keep(note: nil))
        // The user's OPENBLAS_CORETYPE is kept, with a note when the CPU could do better.
        guard case let .keep(note?) = BLASCore.decide(loaded: "Prescott", cpu: Self.zen, request: "auto", userCoreType: "Prescott") else {
            return XCTFail("a user-set core must be kept")
        }
        XCTAssertTrue(note.contains("keeping OPENBLAS_CORETYPE=Prescott") && note.contains("Zen"), note)
        // --blas-core: keep, a name in any case, or refused when unknown or beyond this CPU.
        XCTAssertEqual(BLASCore.decide(loaded: "Prescott", cpu: Self.zen, request: "keep", userCoreType: nil), .keep(note: nil))
        XCTAssertEqual(BLASCore.decide(loaded: "Zen", cpu: Self.zen, request: "haswell", userCoreType: "Zen"), .select(core: "Haswell"))
        XCTAssertEqual(BLASCore.decide(loaded: "Zen", cpu: Self.zen, request: "zen", userCoreType: nil), .keep(note: nil))
        guard case .refuse = BLASCore.decide(loaded: "Zen", cpu: Self.zen, request: "SkylakeX", userCoreType: nil),
              case .refuse = BLASCore.decide(loaded: "Zen", cpu: Self.zen, request: "Pentium9", userCoreType: nil) else {
            return XCTFail("a core the CPU cannot run, or an unknown name, must be refused")
        }
    }

    /// /proc/cpuinfo's flags (the kernel's view, which also drops what the OS does not enable), parsed independently.
    static func procFeatures() -> CPUFeatures? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard let fl = lines.first(where: { $0.hasPrefix("flags") }), let v = lines.first(where: { $0.hasPrefix("vendor_id") }) else { return nil }
        let flags = Set(fl.split(separator: ":")[1].split(separator: " ").map(String.init))
        let vendor = v.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
        return CPUFeatures(vendor: vendor, avx: flags.contains("avx"), avx2fma: flags.contains("avx2") && flags.contains("fma"),
                           avx512: ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains),
                           avx512bf16: flags.contains("avx512_bf16"))
    }

    func testCPUProbeAgreesWithProcCpuinfo() throws {
        guard let proc = Self.procFeatures() else { throw XCTSkip("no /proc/cpuinfo") }
        XCTAssertEqual(CPUFeatures.detect(), proc)
    }

    func bench(_ env: [String: String?], _ extra: [String] = []) throws -> BrainmapCLI.Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blascore-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try BrainmapCLI.run(["bench", "gemm", "--seconds", "0.01", "--no-peer", "--shape", "64,64,64"] + extra, logDir: dir,
                                   environment: env)
    }

    /// OpenBLAS really loads its Prescott kernels (as when its detection fails); the binary must re-execute itself
    /// onto the core cpuid calls for, and say so once on stderr.
    func testGenericCoreIsUpgraded() throws {
        guard let cpu = Self.procFeatures(), let best = BLASCore.best(for: cpu) else { throw XCTSkip("no x86 vector extensions here") }
        let r = try bench(["OPENBLAS_CORETYPE": "Prescott", "BRAINMAP_TEST_CORETYPE_IS_DETECTION": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("OpenBLAS core: \(best) (selected by brainmap; OpenBLAS detected Prescott"), r.stdout)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("brainmap:") }
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(lines.first?.contains("running \(best) instead") == true, r.stderr)
        // What OpenBLAS detects by itself here is not generic: no switch, no note.
        let plain = try bench(["OPENBLAS_CORETYPE": nil, "BRAINMAP_TEST_CORETYPE_IS_DETECTION": nil])
        XCTAssertTrue(plain.stdout.contains("(detected by OpenBLAS)"), plain.stdout)
        XCTAssertFalse(plain.stderr.contains("brainmap:"), plain.stderr)
    }

    func testUserCoreIsKept() throws {
        guard let cpu = Self.procFeatures(), BLASCore.best(for: cpu) != nil else { throw XCTSkip("no x86 vector extensions here") }
        let r = try bench(["OPENBLAS_CORETYPE": "Prescott", "BRAINMAP_TEST_CORETYPE_IS_DETECTION": nil])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("OpenBLAS core: Prescott (OPENBLAS_CORETYPE set by the user)"), r.stdout)
        XCTAssertTrue(r.stderr.contains("keeping OPENBLAS_CORETYPE=Prescott"), r.stderr)
        // --blas-core overrides both: here a downgrade on request, silently.
        let asked = try bench(["OPENBLAS_CORETYPE": nil, "BRAINMAP_TEST_CORETYPE_IS_DETECTION": nil], ["--blas-core", "Prescott"])
        XCTAssertTrue(asked.stdout.contains("OpenBLAS core: Prescott (--blas-core"), asked.stdout + asked.stderr)
        // A core this OpenBLAS was built without (Debian's lacks the oldest): refused, not run on others as if asked.
        let lacking = try bench(["OPENBLAS_CORETYPE": nil, "BRAINMAP_TEST_CORETYPE_IS_DETECTION": nil], ["--blas-core", "Katmai"])
        if !lacking.stdout.contains("OpenBLAS core: Katmai") {
            XCTAssertEqual(lacking.status, 64, lacking.stdout + lacking.stderr)
            XCTAssertTrue(lacking.stderr.contains("--blas-core Katmai: this OpenBLAS lacks that core"), lacking.stderr)
        }
        // A name OpenBLAS does not know: it detects instead, and the record says what was set and what loaded.
        let garbage = try bench(["OPENBLAS_CORETYPE": "garbage", "BRAINMAP_TEST_CORETYPE_IS_DETECTION": nil])
        XCTAssertTrue(garbage.stdout.contains("(OPENBLAS_CORETYPE=garbage set by the user; OpenBLAS loaded"), garbage.stdout)
        if !cpu.avx512 {
            let refused = try bench(["OPENBLAS_CORETYPE": nil], ["--blas-core", "SkylakeX"])
            XCTAssertEqual(refused.status, 64)
            XCTAssertTrue(refused.stderr.contains("cannot run its kernels"), refused.stderr)
        }
    }
}
