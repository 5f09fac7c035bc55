import Foundation

/// The one-node Slurm cluster of `tools/slurm.sh` (real slurmctld, slurmd and munged on loopback), and its client
/// commands (sbatch, squeue, scancel, scontrol) pointed at it through SLURM_CONF.
public final class LocalSlurm {
    public let conf: String
    /// Whether this process started the cluster (then `stop()` stops it; a cluster someone else started is left up).
    let startedHere: Bool

    init(conf: String, startedHere: Bool) { self.conf = conf; self.startedHere = startedHere }

    /// Why the cluster cannot run here — not root, or no apt-get to install it — or nil. The only reasons a test
    /// may skip: anywhere else (CI runs as root on Debian) a failure to start fails the test.
    public static var unavailable: String? {
        if getuid() != 0 { return "the local Slurm cluster needs root (tools/slurm.sh runs its daemons as root)" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get") {
            return "the local Slurm cluster is installed with apt-get (Debian's slurm-wlm), which this machine lacks"
        }
        return nil
    }

    /// Starts the cluster (installing Slurm when missing), or joins the one running.
    public static func start() throws -> LocalSlurm {
        let r = try shell(PythonReference.packageRoot.appendingPathComponent("tools/slurm.sh").path, ["start"], env: [:])
        guard r.status == 0, let line = r.out.split(separator: "\n").last(where: { $0.hasPrefix("export SLURM_CONF=") }) else {
            throw NSError(domain: "LocalSlurm", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey:
                "tools/slurm.sh start failed (exit \(r.status)):\n\(r.out)\n\(r.err)"])
        }
        return LocalSlurm(conf: String(line.dropFirst("export SLURM_CONF=".count)), startedHere: !r.err.contains("already running"))
    }

    public func stop() {
        guard startedHere else { return }
        _ = try? LocalSlurm.shell(PythonReference.packageRoot.appendingPathComponent("tools/slurm.sh").path, ["stop"], env: [:])
    }

    /// Runs a Slurm client command (`sbatch`, `squeue`, …) against this cluster.
    @discardableResult
    public func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try LocalSlurm.shell("/usr/bin/env", [tool] + args, env: ["SLURM_CONF": conf])
    }

    /// `sbatch --parsable ARGS SCRIPT`: the job id (throws with sbatch's message when refused).
    public func submit(_ args: [String], script: String) throws -> String {
        let r = try run("sbatch", ["--parsable"] + args + [script])
        guard r.status == 0, let id = r.out.split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines), !id.isEmpty else {
            throw NSError(domain: "LocalSlurm", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "sbatch \(args) \(script): \(r.err)"])
        }
        return id
    }

    /// The array task ids of `job` that squeue lists in `states` (e.g. "R", "PD,R,CG").
    public func tasks(_ job: String, states: String) throws -> [String] {
        try run("squeue", ["-h", "-r", "-j", job, "-t", states, "-o", "%K"]).out.split(separator: "\n").map(String.init)
    }

    /// Waits until nothing of `job` is pending, running or completing.
    public func waitUntilGone(_ job: String, timeout: TimeInterval = 120) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try tasks(job, states: "PD,R,CG,CF,S,RQ,RS").isEmpty { return }
            usleep(100_000)
        }
        throw NSError(domain: "LocalSlurm", code: 2, userInfo: [NSLocalizedDescriptionKey: "job \(job) still queued after \(Int(timeout)) s:\n\((try? run("squeue", [])).map { $0.out } ?? "")"])
    }

    /// `scontrol show job`'s JobState of one job or array task ("1_2"): COMPLETED, CANCELLED, FAILED… (kept for
    /// MinJobAge after the end; the cluster has no accounting database).
    public func state(_ job: String) throws -> String {
        let out = try run("scontrol", ["show", "job", job]).out
        return out.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("JobState=") }.map { String($0.dropFirst(9)) } ?? "unknown"
    }

    public static func shell(_ exe: String, _ args: [String], env: [String: String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let dir = PythonReference.tempDir("slurm-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Files, not pipes: sbatch --wait and the daemons slurm.sh starts must never block on a full pipe.
        FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
        p.standardError = FileHandle(forWritingAtPath: dir + "/err")
        try p.run()
        p.waitUntilExit()
        func read(_ f: String) -> String { (try? String(contentsOfFile: dir + "/" + f, encoding: .utf8)) ?? "" }
        return (p.terminationStatus, read("out"), read("err"))
    }
}
