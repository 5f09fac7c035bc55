/// Every failure the volume layer reports. Messages name the array, the chunk key or the file, and say what to do.
public enum VolumeError: Error, CustomStringConvertible, Sendable {
    case malformedMetadata(path: String, reason: String)
    case unsupported(path: String, what: String)
    case corruptChunk(array: String, key: String, reason: String)
    case outOfBounds(array: String, region: String, shape: [Int])
    case sizeMismatch(array: String, expected: Int, got: Int)
    case io(path: String, reason: String)
    case notFound(path: String)
    case tiff(path: String, reason: String)

    /// The message, with any `user:password@` of a URL in it redacted.
    public var description: String { redactingCredentials(message) }

    var message: String {
        switch self {
        case let .malformedMetadata(path, reason):
            return "malformed metadata in \(path): \(reason). Fix or regenerate the metadata file."
        case let .unsupported(path, what):
            return "\(path): \(what) is not supported."
        case let .corruptChunk(array, key, reason):
            return "corrupt chunk '\(key)' of array \(array): \(reason). Re-fetch or rewrite that chunk; nothing was filled in for it."
        case let .outOfBounds(array, region, shape):
            return "region \(region) is outside array \(array) of shape \(shape)."
        case let .sizeMismatch(array, expected, got):
            return "array \(array): expected \(expected) bytes of data, got \(got)."
        case let .io(path, reason):
            return "I/O error on \(path): \(reason)."
        case let .notFound(path):
            return "\(path) does not exist (no .zarray/.zgroup/zarr.json found there). Check the path."
        case let .tiff(path, reason):
            return "TIFF \(path): \(reason)."
        }
    }
}
