import CCurl
import Foundation

/// One HTTP GET (optionally a byte range) and what came back.
public struct HTTPRequest: Sendable {
    public var url: String
    public var headers: [String] = []
    /// Bytes [offset, offset+length) or, with a nil offset, the last `length` bytes.
    public var range: (offset: Int?, length: Int)?
    public init(url: String, headers: [String] = [], range: (offset: Int?, length: Int)? = nil) {
        self.url = url; self.headers = headers; self.range = range
    }
}

public struct HTTPResponse: Sendable {
    /// 0 when the transfer failed before a status line (see `transportError`).
    public var status: Int
    public var body: [UInt8]
    /// Response headers of the final response, keys lower-cased.
    public var headers: [String: String]
    /// curl's error for a failed transfer (timeout, reset, truncated body, refused connection), nil on success.
    public var transportError: String?
    /// libcurl's result code (0 on success).
    public var curlCode: Int = 0
}

/// Timeouts and limits of the HTTP layer.
public struct HTTPSettings: Sendable {
    /// Requests in flight at once (one libcurl easy handle and one thread each; connections are reused per handle).
    public var maxConnections = 8
    public var connectTimeout: Double = 10
    /// A transfer slower than `lowSpeedBytes` per second for `lowSpeedSeconds` is aborted (a stalled server).
    public var lowSpeedBytes = 1024
    public var lowSpeedSeconds = 20
    public init() {}
}

/// A pool of libcurl easy handles, each driven by a dedicated thread, so transfers never block Swift's cooperative
/// threads: `perform` suspends the caller until a worker has finished its request.
public final class HTTPClient: @unchecked Sendable {
    public let settings: HTTPSettings
    private let condition = NSCondition()
    private var queue: [(HTTPRequest, CheckedContinuation<HTTPResponse, Never>)] = []
    private var threads: [Thread] = []

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Worker threads start with the first request, so a context that never goes remote costs no threads.
    public init(settings: HTTPSettings = HTTPSettings()) {
        self.settings = settings
    }

    private func startWorkersLocked() {
        guard threads.isEmpty else { return }
        _ = Self.globalInit
        for i in 0..<max(1, settings.maxConnections) {
            let t = Thread { [unowned self] in self.workerLoop() }
            t.name = "brainmap-http-\(i)"
            t.start()
            threads.append(t)
        }
    }

    public func perform(_ request: HTTPRequest) async -> HTTPResponse {
        await withCheckedContinuation { cont in
            condition.lock()
            startWorkersLocked()
            queue.append((request, cont))
            condition.signal()
            condition.unlock()
        }
    }

    private func workerLoop() {
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed") }
        var body = bm_buffer(data: nil, len: 0, cap: 0), head = bm_buffer(data: nil, len: 0, cap: 0)
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let (req, cont) = queue.removeFirst()
            condition.unlock()
            cont.resume(returning: transfer(handle, req, &body, &head))
        }
    }

    private func transfer(_ h: UnsafeMutableRawPointer, _ req: HTTPRequest, _ body: inout bm_buffer, _ head: inout bm_buffer) -> HTTPResponse {
        curl_easy_reset(h)
        bm_buffer_reset(&body); bm_buffer_reset(&head)
        _ = bm_set_str(h, CURLOPT_URL, req.url)
        _ = bm_set_long(h, CURLOPT_NOSIGNAL, 1)
        // Redirects: at most 5, to http(s) only — and to https only when the request carries credentials, so a
        // credential never travels over plain http. libcurl never sends custom Authorization headers to another
        // host after a redirect (CURLOPT_UNRESTRICTED_AUTH stays off), so credentials go only to the named host.
        _ = bm_set_str(h, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = bm_set_long(h, CURLOPT_FOLLOWLOCATION, 1)
        _ = bm_set_long(h, CURLOPT_MAXREDIRS, 5)
        _ = bm_set_str(h, CURLOPT_REDIR_PROTOCOLS_STR, req.headers.isEmpty || !req.url.hasPrefix("https:") ? "http,https" : "https")
        _ = bm_set_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        _ = bm_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(settings.connectTimeout * 1000))
        _ = bm_set_long(h, CURLOPT_LOW_SPEED_LIMIT, settings.lowSpeedBytes)
        _ = bm_set_long(h, CURLOPT_LOW_SPEED_TIME, settings.lowSpeedSeconds)
        _ = bm_set_str(h, CURLOPT_ACCEPT_ENCODING, "")   // gzip/deflate decoded by curl
        _ = bm_set_str(h, CURLOPT_USERAGENT, "brainmap/0.1 libcurl")
        if let r = req.range {
            let spec = r.offset.map { "\($0)-\($0 + r.length - 1)" } ?? "-\(r.length)"
            _ = bm_set_str(h, CURLOPT_RANGE, spec)
        }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for header in req.headers { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        if list != nil { _ = bm_set_ptr(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
        _ = bm_set_body_buffer(h, &body)
        _ = bm_set_header_buffer(h, &head)
        let code = curl_easy_perform(h)
        var status = 0
        _ = bm_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        let bytes = body.len > 0 ? [UInt8](UnsafeBufferPointer(start: body.data, count: body.len)) : []
        let headerText = head.len > 0 ? String(decoding: UnsafeBufferPointer(start: head.data, count: head.len), as: UTF8.self) : ""
        let err: String? = code == CURLE_OK ? nil : "\(String(cString: curl_easy_strerror(code))) (curl \(code.rawValue))"
        return HTTPResponse(status: code == CURLE_OK ? status : 0, body: bytes, headers: Self.parseHeaders(headerText), transportError: err,
                            curlCode: Int(code.rawValue))
    }

    /// Headers of the last response in a (possibly redirected) header stream.
    static func parseHeaders(_ text: String) -> [String: String] {
        var h: [String: String] = [:]
        // "\r\n" is one Character in Swift: split on newlines as characters, not on "\r" and "\n" separately.
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("HTTP/") { h = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            h[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return h
    }
}
