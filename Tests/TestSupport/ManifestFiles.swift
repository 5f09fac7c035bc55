import Foundation

/// The data files of an array directory (temporary files aside), by relative path: what "byte-identical" compares.
public enum ManifestFiles {
    public static func files(_ array: String) -> [String: Data] {
        var out: [String: Data] = [:]
        guard let e = FileManager.default.enumerator(atPath: array) else { return out }
        for case let f as String in e where !(f as NSString).lastPathComponent.hasPrefix(".tmp") {
            var d: ObjCBool = false
            if FileManager.default.fileExists(atPath: array + "/" + f, isDirectory: &d), !d.boolValue { out[f] = FileManager.default.contents(atPath: array + "/" + f) }
        }
        return out
    }
}
