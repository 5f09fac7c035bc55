import Foundation
#if canImport(VolumeStore)
import VolumeStore   // tools/fuzz.sh compiles this file into one module with VolumeStore's sources
#endif

/// A label map's JSON file, {"1": "CTX", "3": null, …}: annotation id → class name, null to drop an id. A file the
/// user names, parsed as untrusted (fuzzed: tools/fuzz.sh labelmap): nesting limited before parsing, like every
/// metadata parser.
enum LabelMapJSON {
    struct Failure: Error { let reason: String }

    /// id → index into `classes`; throws a `Failure` saying what is wrong with the document.
    static func parse(_ bytes: [UInt8], classes: [String]) throws -> [Int64: Int] {
        guard (try? checkJSONDepth(bytes, path: "")) != nil else { throw Failure(reason: "JSON nested deeper than 64 levels") }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw Failure(reason: "not a JSON object of id → class name, e.g. {\"1\": \"CTX\", \"3\": null}")
        }
        var map: [Int64: Int] = [:]
        for (k, v) in obj {
            guard let id = Int64(k) else { throw Failure(reason: "key '\(k)' is not an integer id") }
            if v is NSNull { continue }
            guard let name = v as? String, let c = classes.firstIndex(of: name) else {
                throw Failure(reason: "id \(k) maps to \(v), not one of \(classes.joined(separator: ", ")) or null")
            }
            map[id] = c
        }
        guard !map.isEmpty else { throw Failure(reason: "maps no id to a class") }
        return map
    }
}
