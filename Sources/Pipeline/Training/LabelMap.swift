import Foundation
import NeuralNet
import VolumeStore

/// How an annotation volume's ids become the network's classes (AreaClassifier.classes order). Ids not in the map
/// are unlabelled: never sampled, never evaluated.
public struct LabelMap: Sendable, Equatable {
    /// source id → class index.
    public var classOf: [Int64: Int]
    /// Where it came from (a preset name or a file path), for records and messages.
    public var name: String

    public init(classOf: [Int64: Int], name: String) { self.classOf = classOf; self.name = name }

    /// The phantom's `areas` ids and brainmap's own `labels`: 1..6 = CTX, HYP, STR, VP, WM, ZI; 0 = unlabelled.
    public static let phantom = LabelMap(classOf: Dictionary(uniqueKeysWithValues: (0..<6).map { (Int64($0 + 1), $0) }), name: "phantom")

    /// The public prasad2020 annotations: 1 CTX, 2 STR, 3 TRN (dropped: not one of the six areas), 4 VP, 5 ZI,
    /// 6 internal capsule and 8 corpus callosum → WM, 7 HYP.
    public static let prasad2020 = LabelMap(classOf: [1: 0, 2: 2, 4: 3, 5: 5, 6: 4, 8: 4, 7: 1], name: "prasad2020")

    public static let presets = ["phantom": phantom, "prasad2020": prasad2020]

    /// A preset name, or a JSON file mapping ids to class names, null to drop an id: {"1": "CTX", "3": null, …}.
    public static func load(_ spec: String) throws -> LabelMap {
        if let p = presets[spec] { return p }
        guard let data = FileManager.default.contents(atPath: spec) else {
            throw PipelineError.input("--label-map \(spec): neither a preset (\(presets.keys.sorted().joined(separator: ", "))) nor a readable file")
        }
        do { return LabelMap(classOf: try LabelMapJSON.parse([UInt8](data), classes: AreaClassifier.classes), name: spec) }
        catch let e as LabelMapJSON.Failure { throw PipelineError.input("--label-map \(spec): \(e.reason)") }
    }

    /// As a JSON-friendly dictionary (id → class name) for records.
    public var record: [String: String] {
        Dictionary(uniqueKeysWithValues: classOf.map { (String($0.key), AreaClassifier.classes[$0.value]) })
    }

    /// Class index per element of an annotation buffer (−1 = unlabelled). Integer dtypes only.
    public func classes(of bytes: [UInt8], dtype: DataType, source: String) throws -> [Int8] {
        guard dtype.kind != .float else {
            throw PipelineError.input("annotations \(source) are \(dtype.v3Name); annotations must be an integer label array")
        }
        let n = bytes.count / dtype.size
        var out = [Int8](repeating: -1, count: n)
        // Small ids (the usual case) go through a table.
        let table: [Int8] = (0..<256).map { Int8(classOf[Int64($0)] ?? -1) }
        bytes.withUnsafeBytes { raw in
            if dtype.size == 1 && dtype.kind == .uint {
                for i in 0..<n { out[i] = table[Int(raw[i])] }
            } else {
                for i in 0..<n {
                    let v = dtype.integer(in: raw, at: i)
                    out[i] = v >= 0 && v < 256 ? table[Int(v)] : Int8(classOf[v] ?? -1)
                }
            }
        }
        return out
    }
}
