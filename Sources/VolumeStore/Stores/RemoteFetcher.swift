import Foundation

/// Counts of what the remote layer did, for the closing report of a run.
public final class TransferStats: @unchecked Sendable {
    public init() {}
    private let lock = NSLock()
    private var counts = (requests: 0, retries: 0, failures: 0, bytes: 0)
    private var reasons: [String: Int] = [:]
    public var requests: Int { lock.withLock { counts.requests } }
    public var retries: Int { lock.withLock { counts.retries } }
    public var failures: Int { lock.withLock { counts.failures } }
    public var bytes: Int { lock.withLock { counts.bytes } }
    public var retryReasons: [String: Int] { lock.withLock { reasons } }

    func record(request bytes: Int) { lock.withLock { counts.requests += 1; counts.bytes += bytes } }
    func record(retry reason: String) { lock.withLock { counts.retries += 1; reasons[reason, default: 0] += 1 } }
    func recordFailure() { lock.withLock { counts.failures += 1 } }

    public var summary: String {
        lock.lock(); defer { lock.unlock() }
        let r = reasons.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        return "\(counts.requests) requests, \(String(format: "%.1f", Double(counts.bytes) / 1e6)) MB, \(counts.retries) retries\(r.isEmpty ? "" : " (\(r))"), \(counts.failures) failures"
    }
}

/// A URL or message with any `user:password@` part of a URL replaced by `***@`: no credential reaches a message.
public func redactingCredentials(_ s: String) -> String {
    s.replacingOccurrences(of: #"://[^/@\s]+@"#, with: "://***@", options: .regularExpression)
}

/// Errors of remote stores; each names the URL (never a credential) and what to do.
public enum RemoteError: Error, CustomStringConvertible, Sendable {
    case unauthorized(url: String, status: Int, hint: String)
    case notFound(url: String)
    case http(url: String, status: Int, body: String)
    case gaveUp(url: String, attempts: Int, last: String)
    case permanent(url: String, reason: String)

    public var description: String { redactingCredentials(message) }

    var message: String {
        switch self {
        case let .unauthorized(url, status, hint): return "\(url): HTTP \(status) (access denied). \(hint)"
        case let .notFound(url): return "\(url): HTTP 404, not found. Check the URL or path."
        case let .http(url, status, body): return "\(url): HTTP \(status)\(body.isEmpty ? "" : ": \(body.prefix(200))")"
        case let .permanent(url, reason):
            return "\(url): \(reason). Not retried: this does not heal by waiting (check the URL, the scheme, or the server's TLS certificate)."
        case let .gaveUp(url, attempts, last):
            return "\(url): still failing after \(attempts) attempts (last: \(last)). The run can be resumed once the server is reachable."
        }
    }
}

/// GETs with the retry policy every remote store shares: exponential backoff with full jitter on transport errors,
/// short bodies, 408/425/429/5xx (honouring Retry-After); 404/410 → nil where the caller says missing is allowed;
/// 401/403 → an error with a hint, never "missing".
public struct RemoteFetcher: Sendable {
    public var client: HTTPClient
    public var stats: TransferStats
    public var maxAttempts = 8
    public var baseDelay = 0.1, maxDelay = 20.0
    public var authHint = "Check your credentials (an auth header or token) and permissions."

    public init(client: HTTPClient = HTTPClient(), stats: TransferStats = TransferStats()) { self.client = client; self.stats = stats }

    static let retryable: Set<Int> = [408, 425, 429, 500, 502, 503, 504]
    /// libcurl failures that no retry can heal: unsupported protocol (1), malformed URL (3), a redirect loop or one
    /// to a refused scheme (47), TLS setup, handshake and verification failures (35, 53, 54, 58, 59, 60, 77, 80, 83,
    /// 90, 91), and a range the server cannot satisfy (36).
    static let permanentCurlCodes: Set<Int> = [1, 3, 35, 36, 47, 53, 54, 58, 59, 60, 77, 80, 83, 90, 91]

    /// The body, or nil for 404/410 when `missingAllowed`.
    public func get(_ request: HTTPRequest, missingAllowed: Bool) async throws -> [UInt8]? {
        var last = ""
        for attempt in 1...maxAttempts {
            let r = await client.perform(request)
            stats.record(request: r.body.count)
            var retryAfter: Double? = nil
            if let e = r.transportError {
                if Self.permanentCurlCodes.contains(r.curlCode) {
                    stats.recordFailure()
                    throw RemoteError.permanent(url: request.url, reason: e)
                }
                last = e
                stats.record(retry: e.contains("(curl 18)") ? "truncated body" : e.contains("(curl 28)") ? "timeout" : "transport error")
            } else {
                switch r.status {
                case 200, 206:
                    if let total = Self.contentRangeTotal(r.headers["content-range"]), let range = request.range,
                       let off = range.offset, off + range.length > total {
                        // The value is shorter than the range asked for: no retry can fix that (a corrupt shard index?).
                        stats.recordFailure()
                        throw RemoteError.permanent(url: request.url, reason: "bytes \(off)..<\(off + range.length) asked for, but the object has \(total) bytes (corrupt index?)")
                    }
                    if let problem = shortBody(r, request) {
                        last = problem; stats.record(retry: "short body")
                    } else {
                        return try sliceIfWholeBody(r, request)
                    }
                case 404, 410:
                    if missingAllowed { return nil }
                    stats.recordFailure(); throw RemoteError.notFound(url: request.url)
                case 416:
                    stats.recordFailure()
                    throw RemoteError.permanent(url: request.url, reason: "HTTP 416: the byte range lies outside the object (corrupt shard index?)")
                case 401, 403:
                    stats.recordFailure(); throw RemoteError.unauthorized(url: request.url, status: r.status, hint: authHint)
                case let s where Self.retryable.contains(s):
                    last = "HTTP \(s)"; stats.record(retry: "HTTP \(s)")
                    retryAfter = r.headers["retry-after"].flatMap(Self.parseRetryAfter)
                default:
                    stats.recordFailure()
                    throw RemoteError.http(url: request.url, status: r.status, body: String(decoding: r.body.prefix(300), as: UTF8.self))
                }
            }
            guard attempt < maxAttempts else { break }
            let backoff = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
            let delay = retryAfter.map { min($0, 120) } ?? Double.random(in: 0...backoff)   // full jitter
            try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
        }
        stats.recordFailure()
        throw RemoteError.gaveUp(url: request.url, attempts: maxAttempts, last: last)
    }

    /// A body shorter than Content-Length (curl usually reports this itself) or than the range asked for.
    private func shortBody(_ r: HTTPResponse, _ req: HTTPRequest) -> String? {
        if r.headers["content-encoding"] == nil, let cl = r.headers["content-length"].flatMap({ Int($0) }), cl != r.body.count {
            return "body of \(r.body.count) bytes, Content-Length \(cl)"
        }
        if r.status == 206, let range = req.range, r.body.count != range.length, range.offset != nil {
            return "range body of \(r.body.count) bytes, asked for \(range.length)"
        }
        return nil
    }

    /// A server that ignores Range answers 200 with the whole object: cut the asked-for range out of it.
    private func sliceIfWholeBody(_ r: HTTPResponse, _ req: HTTPRequest) throws -> [UInt8] {
        guard r.status == 200, let range = req.range else { return r.body }
        let start = range.offset ?? max(0, r.body.count - range.length)
        guard start + range.length <= r.body.count else {
            throw RemoteError.http(url: req.url, status: 200, body: "object of \(r.body.count) bytes is shorter than the range asked for")
        }
        return Array(r.body[start..<(start + range.length)])
    }

    /// The total size in a "bytes a-b/TOTAL" Content-Range header.
    static func contentRangeTotal(_ h: String?) -> Int? {
        guard let h, let slash = h.lastIndex(of: "/") else { return nil }
        return Int(h[h.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }

    static func parseRetryAfter(_ s: String) -> Double? {
        if let v = Double(s.trimmingCharacters(in: .whitespaces)) { return max(0, v) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s).map { max(0, $0.timeIntervalSinceNow) }
    }
}
