/// The parts of an HTTP/1.1 request a static file server needs: method, decoded path, headers (lower-cased names).
struct HTTPRequest {
    var method: String
    var path: String
    var version: String
    var headers: [String: String]

    /// Parses a request head (request line and header lines, without the blank line); nil when malformed.
    init?(head: String) {
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return nil }
        let parts = lines.removeFirst().split(separator: " ").map(String.init)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/") else { return nil }
        method = parts[0]; version = parts[2]
        let target = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard target.hasPrefix("/"), let decoded = Self.percentDecode(target) else { return nil }
        path = decoded
        headers = [:]
        for l in lines where !l.isEmpty {
            guard let c = l.firstIndex(of: ":") else { return nil }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// Whether the connection stays open after the response (HTTP/1.1 default; HTTP/1.0 only when asked).
    var keepAlive: Bool {
        let c = headers["connection"]?.lowercased() ?? ""
        return version == "HTTP/1.1" ? c != "close" : c == "keep-alive"
    }

    static func percentDecode(_ s: String) -> String? {
        var out: [UInt8] = [], bytes = Array(s.utf8), i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let v = UInt8(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) else { return nil }
                out.append(v); i += 3
            } else { out.append(bytes[i]); i += 1 }
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// A byte range request resolved against a file's size (RFC 9110 §14: one range; several are served as the whole).
enum RangeRequest: Equatable {
    case whole
    case part(start: Int, end: Int)   // inclusive end
    case unsatisfiable

    init(header: String?, size: Int) {
        guard let h = header?.trimmingCharacters(in: .whitespaces), h.lowercased().hasPrefix("bytes=") else { self = .whole; return }
        let spec = h.dropFirst(6)
        guard !spec.contains(",") else { self = .whole; return }
        let p = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard p.count == 2 else { self = .whole; return }
        if p[0].isEmpty {
            // "-n": the last n bytes.
            guard let n = Int(p[1]), n > 0 else { self = .unsatisfiable; return }
            self = size == 0 ? .unsatisfiable : .part(start: max(0, size - n), end: size - 1)
            return
        }
        guard let a = Int(p[0]), a >= 0 else { self = .whole; return }
        guard a < size else { self = .unsatisfiable; return }
        if p[1].isEmpty { self = .part(start: a, end: size - 1); return }
        guard let b = Int(p[1]), b >= a else { self = .whole; return }
        self = .part(start: a, end: min(b, size - 1))
    }
}
