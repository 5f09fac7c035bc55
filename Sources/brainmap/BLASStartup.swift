import ArgumentParser
import Foundation
import NeuralNet

/// `--blas-core` on the commands that compute. The value is acted on at start-up (`BLASStartup`), before the
/// command runs: OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so switching means re-executing.
struct BLASFlags: ParsableArguments {
    @Option(help: ArgumentHelp("OpenBLAS kernels: auto (switch from a generic core to the CPU's best), keep, or a core name (Haswell, Zen, SkylakeX, …).",
                               valueName: "core")) var blasCore = "auto"
}

/// Makes sure the process runs OpenBLAS's right kernels. When OpenBLAS fell back to a generic core (a VM that masks
/// the CPU model) on a CPU with better vector units, or `--blas-core NAME` asks for another core, re-executes this
/// binary once with OPENBLAS_CORETYPE set. A user's OPENBLAS_CORETYPE is kept under `auto`.
enum BLASStartup {
    /// Set in the re-executed process (value: the core OpenBLAS loaded first); also stops a second re-exec.
    static let marker = "BRAINMAP_BLAS_REEXEC"
    /// For tests: treat OPENBLAS_CORETYPE as OpenBLAS's own (fallback) detection rather than the user's choice.
    static let testHook = "BRAINMAP_TEST_CORETYPE_IS_DETECTION"

    static func ensure(arguments: [String]) {
        let env = ProcessInfo.processInfo.environment
        let loaded = BLASCore.loaded, cpu = CPUFeatures.detect()
        if let first = env[marker] {
            unsetenv(marker); unsetenv(testHook)   // children of this process decide for themselves
            let wanted = env["OPENBLAS_CORETYPE"] ?? "?"
            if loaded == wanted, requestedCore(arguments).lowercased() == "auto" {
                BLASCore.selection = "selected by brainmap; OpenBLAS detected \(first) on \(cpu.summary)"
                warn("brainmap: OpenBLAS chose its \(first) kernels on this CPU (\(cpu.summary)); running \(loaded) instead (--blas-core keep to disable)")
            } else if loaded == wanted {
                BLASCore.selection = "--blas-core; OpenBLAS had loaded \(first)"
            } else if requestedCore(arguments).lowercased() == "auto" {
                BLASCore.selection = "brainmap asked for \(wanted), which this OpenBLAS lacks; OpenBLAS detected \(first)"
                warn("brainmap: could not switch OpenBLAS from \(first) to \(wanted) (this OpenBLAS lacks that core); running \(loaded)")
            } else {
                // Asked for by name: running other kernels than asked (and recording them as asked) would be a lie.
                warn("brainmap: --blas-core \(wanted): this OpenBLAS lacks that core (it loaded \(loaded) instead); "
                     + "choose one it has (e.g. \(first), which it detected), or auto")
                exit(64)
            }
            return
        }
        let request = requestedCore(arguments)
        let user = env[testHook] == nil ? env["OPENBLAS_CORETYPE"] : nil
        if let user {
            // OpenBLAS ignores a name it does not know and detects instead: say so rather than credit the user.
            BLASCore.selection = BLASCore.canonical(user) == loaded ? "OPENBLAS_CORETYPE set by the user"
                : "OPENBLAS_CORETYPE=\(user) set by the user; OpenBLAS loaded \(loaded)"
        }
        switch BLASCore.decide(loaded: loaded, cpu: cpu, request: request, userCoreType: user) {
        case let .keep(note):
            if let note { warn(note) }
        case let .refuse(message):
            warn("brainmap: " + message)
            exit(64)
        case let .select(core):
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(marker, loaded, 1)
            let exe = FileManager.default.fileExists(atPath: "/proc/self/exe") ? "/proc/self/exe" : Bundle.main.executablePath ?? arguments[0]
            execv(exe, CommandLine.unsafeArgv)
            // Still here: exec failed. Run on the loaded core rather than not at all.
            unsetenv(marker)
            warn("brainmap: could not re-execute to select OpenBLAS core \(core) (\(String(cString: strerror(errno)))); running \(loaded)")
        }
    }

    /// The value of `--blas-core` (or `--blas-core=`) anywhere before a `--`; "auto" when absent.
    static func requestedCore(_ arguments: [String]) -> String {
        var i = 1
        while i < arguments.count, arguments[i] != "--" {
            if arguments[i] == "--blas-core", i + 1 < arguments.count { return arguments[i + 1] }
            if arguments[i].hasPrefix("--blas-core=") { return String(arguments[i].dropFirst("--blas-core=".count)) }
            i += 1
        }
        return "auto"
    }

    private static func warn(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}
