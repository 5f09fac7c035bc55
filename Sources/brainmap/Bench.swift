import ArgumentParser
import Foundation

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput next to a peer measured in the same run (machines are noisy; ratios are what count).",
        subcommands: [BenchIO.self, BenchGEMM.self, BenchCNN.self, BenchPredict.self, BenchTrain.self, BenchCleanup.self])
}

/// Runs a peer script from tools/bench with the repository's reference Python; nil (with a note) when unavailable.
func runPeer(_ script: String, _ args: [String], python: String? = nil) -> String? {
    let root = repositoryRoot()
    guard FileManager.default.fileExists(atPath: root + "/tools/bench/" + script) else {
        print("  (peer skipped: no \(root)/tools/bench/\(script); run brainmap from its checkout, or the checkout's .build binary)")
        return nil
    }
    let python = python ?? ProcessInfo.processInfo.environment["BRAINMAP_PYTHON"] ?? root + "/.venv/bin/python"
    guard FileManager.default.isExecutableFile(atPath: python) else {
        print("  (peer skipped: no \(python); run tools/setup-python.sh)")
        return nil
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [root + "/tools/bench/" + script] + args
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { print("  (peer failed to start: \(error))"); return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { print("  (peer \(script) exited \(p.terminationStatus))"); return nil }
    return String(decoding: data, as: UTF8.self)
}

/// The checkout this binary was built from (…/.build/<config>/brainmap → …), or the working directory.
func repositoryRoot() -> String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    for _ in 0..<4 {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}

/// Times `body` repeatedly for at least `seconds`; returns units processed per second.
func throughput(seconds: Double, _ body: () throws -> Int) rethrows -> Double {
    let start = Date()
    var units = 0
    repeat { units += try body() } while Date().timeIntervalSince(start) < seconds
    return Double(units) / Date().timeIntervalSince(start)
}
