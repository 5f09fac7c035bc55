import Foundation

/// Runs the `brainmap` executable that `swift build` put next to the tests, as a user would.
public enum BrainmapCLI {
    public static var binary: String {
        if let p = ProcessInfo.processInfo.environment["BRAINMAP_BIN"] { return p }
        for config in ["debug", "release"] {
            let p = PythonReference.packageRoot.appendingPathComponent(".build/\(config)/brainmap").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return PythonReference.packageRoot.appendingPathComponent(".build/debug/brainmap").path
    }

    public struct Result { public let status: Int32; public let stdout: String; public let stderr: String }

    /// Starts a run; stdout and stderr go to files under `logDir` (so a long run never blocks on a full pipe).
    /// `environment` entries are added to (nil: removed from) this process's environment.
    public static func start(_ args: [String], logDir: String, tag: String, environment: [String: String?] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            p.environment = env
        }
        FileManager.default.createFile(atPath: "\(logDir)/\(tag).out", contents: nil)
        FileManager.default.createFile(atPath: "\(logDir)/\(tag).err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: "\(logDir)/\(tag).out")
        p.standardError = FileHandle(forWritingAtPath: "\(logDir)/\(tag).err")
        try p.run()
        return p
    }

    /// Runs to completion and returns what it printed.
    @discardableResult
    public static func run(_ args: [String], logDir: String, tag: String = "run", environment: [String: String?] = [:]) throws -> Result {
        let p = try start(args, logDir: logDir, tag: tag, environment: environment)
        p.waitUntilExit()
        return result(p, logDir: logDir, tag: tag)
    }

    public static func result(_ p: Process, logDir: String, tag: String) -> Result {
        func read(_ ext: String) -> String { (try? String(contentsOfFile: "\(logDir)/\(tag).\(ext)", encoding: .utf8)) ?? "" }
        return Result(status: p.terminationStatus, stdout: read("out"), stderr: read("err"))
    }
}
