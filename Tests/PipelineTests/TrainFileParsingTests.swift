import Foundation
import XCTest
@testable import Pipeline
import TestSupport

/// The JSON brainmap reads next to training: a --label-map file and a training state's metadata (both fuzzed by
/// tools/fuzz.sh: labelmap, modelstate). Hostile nesting is an error, not a stack overflow; a state that does not
/// hang together is not resumed from.
final class TrainFileParsingTests: XCTestCase {
    func testLabelMapFiles() throws {
        let dir = PythonReference.tempDir("labelmap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func load(_ text: String) throws -> LabelMap {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/m.json"))
            return try LabelMap.load(dir + "/m.json")
        }
        XCTAssertEqual(try load(#"{"1": "CTX", "3": null, "8": "WM"}"#).classOf, [1: 0, 8: 4])
        for (text, needle) in [(String(repeating: "[", count: 100_000), "JSON nested deeper than 64 levels"),
                               (#"{"a": "CTX"}"#, "key 'a' is not an integer id"),
                               (#"{"1": "XYZ"}"#, "id 1 maps to XYZ"),
                               (#"{"1": null}"#, "maps no id to a class"),
                               ("[1, 2]", "not a JSON object")] {
            XCTAssertThrowsError(try load(text)) { e in
                XCTAssertTrue("\(e)".contains("--label-map \(dir)/m.json: \(needle)"), "\(e)")
            }
        }
    }

    func testTrainingStateMetadata() throws {
        func history(_ epochs: [Int], loss: Double = 1) -> String {
            let h = epochs.map { EpochRecord(epoch: $0, trainLoss: loss, trainAccuracy: 0.5, valLoss: 1, valAccuracy: 0.5, seconds: 1) }
            return String(decoding: try! JSONEncoder().encode(h), as: UTF8.self)
        }
        let good = ["identity": #"{"lr": "0.0001"}"#, "history": history([1, 2]), "adam_step": "8", "best_epoch": "2", "best_accuracy": "0.5"]
        let parsed = TrainStateMetadata.parse(good)
        XCTAssertEqual(parsed?.identity, ["lr": "0.0001"])
        XCTAssertEqual(parsed?.history.map(\.epoch), [1, 2])
        XCTAssertEqual(parsed?.adamStep, 8)
        for (key, value) in [("history", history([1, 3])), ("history", history([2])), ("best_epoch", "3"), ("adam_step", "-1"),
                             ("best_accuracy", "nan"), ("identity", String(repeating: "{\"a\":", count: 5000)),
                             ("history", String(repeating: "[", count: 100_000)), ("identity", "[1]")] {
            var bad = good
            bad[key] = value
            XCTAssertNil(TrainStateMetadata.parse(bad), "\(key) = \(value.prefix(40)) was accepted")
        }
    }
}
