import Foundation

/// Runs the Python reference tools (zarr-python, numcodecs, tifffile) that `tools/setup-python.sh` installs into
/// `.venv`. Tests fail, not skip, when they are missing: a reference check that silently does not run is a defect.
public enum PythonReference {
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var python: String {
        if let p = ProcessInfo.processInfo.environment["BRAINMAP_PYTHON"] { return p }
        return packageRoot.appendingPathComponent(".venv/bin/python").path
    }

    /// Runs a script under tools/ with arguments; returns stdout, throws with stderr on failure.
    @discardableResult
    public static func run(_ script: String, _ args: [String]) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw NSError(domain: "PythonReference", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "reference Python not found at \(python); run tools/setup-python.sh (tools/test.sh does it)"])
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [packageRoot.appendingPathComponent(script).path] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let so = String(decoding: o, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "PythonReference", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey:
                "\(script) \(args.joined(separator: " ")) failed:\n\(so)\n\(String(decoding: e, as: UTF8.self))"])
        }
        return so
    }

    public static func tempDir(_ name: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
