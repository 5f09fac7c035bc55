import COpenBLAS

/// Which of OpenBLAS's kernel sets ("cores") this process runs, and which one the CPU could run.
///
/// A DYNAMIC_ARCH OpenBLAS picks its core once, when the library loads, from the CPU's family/model; on a VM that
/// masks the model it falls back to an old generic core (Prescott: SSE3 kernels, ~5× slower sgemm on an AVX-512
/// CPU). The decision below compares the loaded core's instruction-set tier with what cpuid says the CPU (and OS)
/// support; the command line re-executes the process with `OPENBLAS_CORETYPE` set when it should switch.
public enum BLASCore {
    /// The core OpenBLAS loaded (e.g. "Zen", "SkylakeX", "Prescott").
    public static var loaded: String { String(cString: openblas_get_corename()) }

    /// How the running core was chosen; set once by the command line's start-up check, before any work.
    public nonisolated(unsafe) static var selection = "detected by OpenBLAS"

    /// The core with how it was chosen, for run.json and the model sidecar, e.g. "Zen (detected by OpenBLAS)".
    public static var record: String { "\(loaded) (\(selection))" }

    /// OpenBLAS's x86 core names (its `dynamic.c` spelling) by instruction-set tier: 1 SSE-era generic kernels,
    /// 2 AVX, 3 AVX2+FMA, 4 AVX-512. A core outside this table (other architectures, newer names) is left alone.
    static let tiers: [String: Int] = {
        var t: [String: Int] = [:]
        for n in ["Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington", "Nehalem",
                  "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Bobcat"] { t[n] = 1 }
        for n in ["Sandybridge", "Bulldozer", "Piledriver", "Steamroller"] { t[n] = 2 }
        for n in ["Haswell", "Excavator", "Zen"] { t[n] = 3 }
        for n in ["SkylakeX", "Cooperlake", "SapphireRapids"] { t[n] = 4 }
        return t
    }()

    /// The table's spelling of a core name given in any case; nil if unknown.
    public static func canonical(_ name: String) -> String? {
        tiers.keys.first { $0.lowercased() == name.lowercased() }
    }

    /// The best core for these features (what OpenBLAS itself picks on a CPU it recognises), nil if nothing
    /// better than the generic kernels applies.
    public static func best(for cpu: CPUFeatures) -> String? {
        if cpu.avx512 { return cpu.avx512bf16 ? "Cooperlake" : "SkylakeX" }
        if cpu.avx2fma { return cpu.amd ? "Zen" : "Haswell" }
        if cpu.avx { return "Sandybridge" }
        return nil
    }

    /// Whether the CPU can execute a core's kernels (forcing e.g. SkylakeX on an AVX2 CPU dies of SIGILL).
    public static func runs(_ core: String, on cpu: CPUFeatures) -> Bool {
        guard let name = canonical(core), let tier = tiers[name] else { return true }   // unknown: not ours to judge
        switch tier {
        case 4: return cpu.avx512 && (name == "SkylakeX" || cpu.avx512bf16)
        case 3: return cpu.avx2fma
        case 2: return cpu.avx
        default: return true
        }
    }

    /// What to do at start-up.
    public enum Decision: Equatable {
        /// Run on the loaded core; `note` (if any) is one line for stderr.
        case keep(note: String?)
        /// Re-execute with `OPENBLAS_CORETYPE=core`.
        case select(core: String)
        /// The request cannot be honoured (unknown core, or one this CPU cannot execute).
        case refuse(String)
    }

    /// The start-up policy. `request` is `--blas-core` (auto, keep or a core name); `userCoreType` is the
    /// environment's OPENBLAS_CORETYPE, which auto respects (the user chose it; OpenBLAS already loaded it).
    public static func decide(loaded: String, cpu: CPUFeatures, request: String, userCoreType: String?) -> Decision {
        switch request.lowercased() {
        case "keep":
            return .keep(note: nil)
        case "auto":
            guard let target = best(for: cpu), let have = tiers[loaded], let want = tiers[target], have < want else {
                return .keep(note: nil)
            }
            if let user = userCoreType, !user.isEmpty {
                return .keep(note: "brainmap: keeping OPENBLAS_CORETYPE=\(user) (OpenBLAS core \(loaded)) as set; this CPU (\(cpu.summary)) could run \(target)")
            }
            return .select(core: target)
        default:
            guard let name = canonical(request) else {
                return .refuse("--blas-core \(request): not an OpenBLAS core name (auto, keep, or one of \(tiers.keys.sorted().joined(separator: ", ")))")
            }
            guard runs(name, on: cpu) else { return .refuse("--blas-core \(name): this CPU (\(cpu.summary)) cannot run its kernels") }
            return name == loaded ? .keep(note: nil) : .select(core: name)
        }
    }
}

/// The vector extensions that decide OpenBLAS's kernels, each counted only when the OS also saves its registers.
public struct CPUFeatures: Equatable, Sendable {
    /// cpuid's vendor string, e.g. "GenuineIntel", "AuthenticAMD" ("" off x86).
    public var vendor = ""
    public var amd: Bool { vendor == "AuthenticAMD" || vendor == "HygonGenuine" }
    public var avx = false
    /// AVX2 and FMA3 (the Haswell/Zen kernels need both).
    public var avx2fma = false
    /// AVX-512 F, DQ, CD, BW and VL (the SkylakeX kernels' set).
    public var avx512 = false
    public var avx512bf16 = false

    public init(vendor: String = "", avx: Bool = false, avx2fma: Bool = false, avx512: Bool = false, avx512bf16: Bool = false) {
        self.vendor = vendor; self.avx = avx; self.avx2fma = avx2fma; self.avx512 = avx512; self.avx512bf16 = avx512bf16
    }

    /// Reads cpuid and XCR0 directly (as OpenBLAS does) rather than /proc/cpuinfo: no file parsing, not Linux-only,
    /// and the same view of a VM's masked CPU that OpenBLAS's detection had.
    public static func detect() -> CPUFeatures {
        var f = CPUFeatures()
        var r: [UInt32] = [0, 0, 0, 0]
        func cpuid(_ leaf: UInt32, _ sub: UInt32 = 0) -> Bool { brainmap_cpuid(leaf, sub, &r) != 0 }
        guard cpuid(0) else { return f }
        let maxLeaf = r[0]
        f.vendor = String(decoding: [r[1], r[3], r[2]].flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } },
                          as: UTF8.self)   // ebx, edx, ecx: "Auth" "enti" "cAMD"
        guard cpuid(1) else { return f }
        let ecx1 = r[2]
        let osxsave = ecx1 & (1 << 27) != 0
        let xcr0 = osxsave ? brainmap_xgetbv0() : 0
        let osAVX = xcr0 & 0x6 == 0x6, osAVX512 = xcr0 & 0xE6 == 0xE6
        f.avx = osAVX && ecx1 & (1 << 28) != 0
        guard maxLeaf >= 7, cpuid(7) else { return f }
        let ebx7 = r[1]
        f.avx2fma = f.avx && ebx7 & (1 << 5) != 0 && ecx1 & (1 << 12) != 0
        let need: UInt32 = (1 << 16) | (1 << 17) | (1 << 28) | (1 << 30) | (1 << 31)   // F, DQ, CD, BW, VL
        f.avx512 = osAVX512 && ebx7 & need == need
        if f.avx512, r[0] >= 1, cpuid(7, 1) { f.avx512bf16 = r[0] & (1 << 5) != 0 }
        return f
    }

    /// e.g. "AuthenticAMD, AVX2+FMA" or "GenuineIntel, AVX-512 (BF16)".
    public var summary: String {
        let isa = avx512 ? "AVX-512" + (avx512bf16 ? " (BF16)" : "") : avx2fma ? "AVX2+FMA" : avx ? "AVX" : "SSE only"
        return (vendor.isEmpty ? "" : vendor + ", ") + isa
    }
}
