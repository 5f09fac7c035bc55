import Foundation
import XCTest
import TestSupport
@testable import NeuralNet

/// tools/export_weights.py on a checkpoint in torch.save's zip layout (written without torch by
/// tools/make_torch_checkpoint.py, since torch is not installed here).
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
}
