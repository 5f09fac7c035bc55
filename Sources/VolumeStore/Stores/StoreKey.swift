/// Keys that come from metadata (OME-Zarr dataset paths, node paths) must name something inside the store: a key is
/// relative, made of non-empty segments, none of them "." or "..", with no backslash, NUL or percent-escape (which
/// an HTTP server would decode into any of those). Anything else is refused with an error naming the value — for
/// files and for HTTP alike, so a URL built from metadata never leaves the source's base path or host.
public enum StoreKey {
    public static func relative(_ key: String, from what: String, location: String) throws -> String {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        let bad = key.isEmpty || key.hasPrefix("/") || key.contains("\\") || key.contains("\0") || key.contains("%")
            || key.contains(":") || segments.contains { $0.isEmpty || $0 == "." || $0 == ".." }
        guard !bad else {
            throw VolumeError.malformedMetadata(path: location, reason: "\(what) '\(key.replacingOccurrences(of: "\0", with: "\\0"))' does not stay inside the store (relative segments only, no '..', '/', '\\', '%', ':' or NUL)")
        }
        return key
    }
}
