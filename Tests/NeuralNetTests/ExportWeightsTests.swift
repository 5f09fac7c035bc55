import Foundation
import XCTest
import TestSupport
@testable import NeuralNet

/// tools/export_weights.py on checkpoints in torch.save's zip layout written without torch by
/// tools/make_torch_checkpoint.py (CI has no torch), and on real PyTorch checkpoints when .venv-torch exists.
final class ExportWeightsTests: XCTestCase {
    func testCheckpointConvertsToLoadableSafetensors() throws {
        let dir = PythonReference.tempDir("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PythonReference.run("tools/make_torch_checkpoint.py", [dir + "/cnn_weights.pt", "4", "--reference", dir + "/ref.safetensors"])
        try PythonReference.run("tools/export_weights.py", [dir + "/cnn_weights.pt", dir + "/model.safetensors"])
        let model = try AreaClassifier(contentsOf: dir + "/model.safetensors")
        XCTAssertEqual(model.parameters, try Safetensors.load(path: dir + "/ref.safetensors"))

        try PythonReference.run("tools/make_torch_checkpoint.py", [dir + "/bad.pt", "4", "--wrong-shape"])
        XCTAssertThrowsError(try PythonReference.run("tools/export_weights.py", [dir + "/bad.pt", dir + "/bad.safetensors"])) { e in
            XCTAssertTrue("\(e)".contains("fc1.weight") && "\(e)".contains("4608"), "\(e)")
        }
    }

    /// What people commonly save: wrapped checkpoints and DataParallel names convert; the legacy format without torch
    /// gets a message that says what it is and what to do.
    func testWrappedCheckpointsAndLegacyFormatWithoutTorch() throws {
        let dir = PythonReference.tempDir("export-wrapped")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, flags) in [["--wrap", "state_dict"], ["--wrap", "model_state_dict"], ["--module-prefix"],
                           ["--module-prefix", "--wrap", "model_state_dict"]].enumerated() {
            try PythonReference.run("tools/make_torch_checkpoint.py", [dir + "/c\(i).pt", "\(i)", "--reference", dir + "/ref\(i).safetensors"] + flags)
            try PythonReference.run("tools/export_weights.py", [dir + "/c\(i).pt", dir + "/m\(i).safetensors"])
            XCTAssertEqual(try AreaClassifier(contentsOf: dir + "/m\(i).safetensors").parameters,
                           try Safetensors.load(path: dir + "/ref\(i).safetensors"), "\(flags)")
        }
        try PythonReference.run("tools/make_torch_checkpoint.py", [dir + "/legacy.pt", "1", "--legacy"])
        XCTAssertThrowsError(try PythonReference.run("tools/export_weights.py", [dir + "/legacy.pt", dir + "/l.safetensors"])) { e in
            XCTAssertTrue("\(e)".contains("legacy (pre-1.6) format") && "\(e)".contains("pip install torch"), "\(e)")
            XCTAssertFalse("\(e)".contains("BadZipFile"), "\(e)")
        }
    }

    /// Real PyTorch checkpoints (plain, wrapped, a training checkpoint with optimizer state, DataParallel, legacy),
    /// converted with torch and, except legacy, without it. Needs .venv-torch (tools/bench/setup-torch.sh).
    func testRealPyTorchCheckpoints() throws {
        let torchPython = PythonReference.packageRoot.appendingPathComponent(".venv-torch/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: torchPython) else {
            throw XCTSkip("no .venv-torch (tools/bench/setup-torch.sh): real-PyTorch checkpoint cases not run")
        }
        let dir = PythonReference.tempDir("export-torch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ python: String, _ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw NSError(domain: "export", code: Int(p.terminationStatus)) }
        }
        let tools = PythonReference.packageRoot.appendingPathComponent("tools").path
        try run(torchPython, [tools + "/reference/torch_checkpoints.py", dir])
        let ref = try Safetensors.load(path: dir + "/ref.safetensors")
        for name in ["plain", "wrapped", "training", "dataparallel", "legacy"] {
            try run(torchPython, [tools + "/export_weights.py", "\(dir)/\(name).pt", "\(dir)/t-\(name).safetensors"])
            XCTAssertEqual(try AreaClassifier(contentsOf: "\(dir)/t-\(name).safetensors").parameters, ref, "\(name) with torch")
            guard name != "legacy" else { continue }
            try PythonReference.run("tools/export_weights.py", ["\(dir)/\(name).pt", "\(dir)/n-\(name).safetensors"])
            XCTAssertEqual(try AreaClassifier(contentsOf: "\(dir)/n-\(name).safetensors").parameters, ref, "\(name) without torch")
        }
    }
}
