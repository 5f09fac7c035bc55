#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A static HTTP/1.1 file server for Zarr stores and reports: GET, HEAD, single byte ranges, CORS (any origin, with
/// preflight), keep-alive, one thread per connection. Written over POSIX sockets: the project's HTTP client is
/// libcurl and the job is small, so a server framework (swift-nio, Hummingbird) would cost every CI build minutes of
/// compiling for what ~200 lines do.
///
/// Directories are mounted at URL prefixes ("/" → RUN.zarr, "/source/" → the raw volume); a path resolves inside its
/// mount (segments "..", "." and backslashes are refused; symlinks inside a mount are followed, as for any static
/// server of a directory the user chose), a directory serves its index.html if it has one, anything else missing is 404 — which Zarr readers take as "chunk not written".
public final class StaticServer: @unchecked Sendable {
    public struct Mount: Sendable {
        public var prefix: String, root: String
        public init(prefix: String, root: String) { self.prefix = prefix; self.root = root }
    }

    public let port: Int
    public let host: String
    private let mounts: [Mount]
    private let listener: Int32
    private let log: (@Sendable (String) -> Void)?
    private let slots = DispatchSemaphore(value: 64)   // connections served at once
    private let lock = NSLock()
    private var stopped = false

    /// Binds and listens (port 0: any free port, see `port`).
    public init(mounts: [Mount], host: String = "127.0.0.1", port: Int = 8000, log: (@Sendable (String) -> Void)? = nil) throws {
        self.mounts = mounts.sorted { $0.prefix.count > $1.prefix.count }
        self.host = host; self.log = log
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ReportError.output("cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            close(fd); throw ReportError.input("--host \(host) is not an IPv4 address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)")
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 128) == 0 else {
            let e = String(cString: strerror(errno)); close(fd)
            throw ReportError.output("cannot listen on \(host):\(port): \(e); choose another --port")
        }
        var got = sockaddr_in(), len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.port = Int(UInt16(bigEndian: got.sin_port))
        listener = fd
        signal(SIGPIPE, SIG_IGN)   // a client closing mid-body is an error return, not a signal
    }

    /// Accepts connections until `stop()`; each is served on its own thread.
    public func serve() {
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                lock.lock(); let s = stopped; lock.unlock()
                if s { return }
                usleep(10_000); continue
            }
            slots.wait()
            let t = Thread { [self] in
                defer { close(c); slots.signal() }
                connection(c)
            }
            t.start()
        }
    }

    /// Starts `serve()` on a background thread.
    public func start() { Thread { self.serve() }.start() }

    public func stop() {
        lock.lock(); stopped = true; lock.unlock()
        shutdown(listener, Int32(SHUT_RDWR)); close(listener)
    }

    // MARK: one connection

    private func connection(_ fd: Int32) {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            // Read until the end of the head (requests have no body here; a body is not expected and is refused).
            var headEnd: Int?
            while headEnd == nil {
                headEnd = Self.find(buffer, [13, 10, 13, 10])
                if headEnd != nil { break }
                guard buffer.count < 64 << 10 else { _ = respond(fd, 431, "request head too large", keepAlive: false); return }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            buffer.removeFirst(headEnd! + 4)
            guard let req = HTTPRequest(head: head) else { _ = respond(fd, 400, "malformed request", keepAlive: false); return }
            if let len = req.headers["content-length"], len != "0" { _ = respond(fd, 400, "request bodies are not accepted", keepAlive: false); return }
            guard handle(fd, req), req.keepAlive else { return }
        }
    }

    /// Answers one request; false when the connection must close.
    private func handle(_ fd: Int32, _ req: HTTPRequest) -> Bool {
        switch req.method {
        case "OPTIONS":
            // CORS preflight: any origin may read with Range.
            let asked = req.headers["access-control-request-headers"] ?? "Range"
            return send(fd, head(204, ["Access-Control-Allow-Methods": "GET, HEAD, OPTIONS", "Access-Control-Allow-Headers": asked,
                                       "Access-Control-Max-Age": "86400", "Content-Length": "0"], keepAlive: req.keepAlive))
        case "GET", "HEAD": break
        default: return respond(fd, 405, "only GET, HEAD and OPTIONS", keepAlive: req.keepAlive, extra: ["Allow": "GET, HEAD, OPTIONS"])
        }
        guard let file = resolve(req.path) else {
            log?("\(req.method) \(req.path) 404")
            return respond(fd, 404, "not found", keepAlive: req.keepAlive)
        }
        let f = open(file, O_RDONLY)
        guard f >= 0 else { return respond(fd, 404, "not found", keepAlive: req.keepAlive) }
        defer { close(f) }
        var st = stat()
        guard fstat(f, &st) == 0 else { return respond(fd, 500, "cannot stat", keepAlive: false) }
        let size = Int(st.st_size)
        var headers = ["Content-Type": Self.contentType(file), "Accept-Ranges": "bytes", "Last-Modified": Self.httpDate(st.st_mtim.tv_sec)]
        let status: Int, start: Int, length: Int
        switch RangeRequest(header: req.headers["range"], size: size) {
        case .whole: status = 200; start = 0; length = size
        case .part(let a, let b):
            status = 206; start = a; length = b - a + 1
            headers["Content-Range"] = "bytes \(a)-\(b)/\(size)"
        case .unsatisfiable:
            log?("\(req.method) \(req.path) 416")
            return respond(fd, 416, "range not satisfiable", keepAlive: req.keepAlive, extra: ["Content-Range": "bytes */\(size)"])
        }
        headers["Content-Length"] = String(length)
        log?("\(req.method) \(req.path) \(status) \(length)")
        guard send(fd, head(status, headers, keepAlive: req.keepAlive)) else { return false }
        guard req.method == "GET" else { return true }
        var offset = off_t(start), left = length
        while left > 0 {
            let n = sendfile(fd, f, &offset, min(left, 1 << 24))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            left -= n
        }
        return true
    }

    /// The file a URL path names, inside its mount; nil when there is none.
    func resolve(_ path: String) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !segments.contains(where: { $0 == ".." || $0 == "." || $0.contains("\0") || $0.contains("\\") }) else { return nil }
        let clean = "/" + segments.joined(separator: "/") + (path.hasSuffix("/") && !segments.isEmpty ? "/" : "")
        for m in mounts {
            let prefix = m.prefix.hasSuffix("/") ? m.prefix : m.prefix + "/"
            guard clean == String(prefix.dropLast()) || clean.hasPrefix(prefix) || prefix == "/" else { continue }
            let rest = clean == String(prefix.dropLast()) ? "" : String(clean.dropFirst(prefix.count))
            var p = rest.isEmpty ? m.root : m.root + "/" + rest
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { return nil }
            if isDir.boolValue {
                p += "/index.html"
                guard FileManager.default.fileExists(atPath: p) else { return nil }
            }
            return p
        }
        return nil
    }

    private func head(_ status: Int, _ headers: [String: String], keepAlive: Bool) -> String {
        var all = headers
        all["Access-Control-Allow-Origin"] = "*"
        all["Access-Control-Expose-Headers"] = "Content-Range, Content-Length, Accept-Ranges, Last-Modified"
        all["Connection"] = keepAlive ? "keep-alive" : "close"
        all["Server"] = "brainmap"
        return "HTTP/1.1 \(status) \(Self.reason(status))\r\n" + all.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)\r\n" }.joined() + "\r\n"
    }

    /// A short text response (errors, 404).
    private func respond(_ fd: Int32, _ status: Int, _ text: String, keepAlive: Bool, extra: [String: String] = [:]) -> Bool {
        var h = extra
        h["Content-Type"] = "text/plain; charset=utf-8"; h["Content-Length"] = String(text.utf8.count + 1)
        return send(fd, head(status, h, keepAlive: keepAlive) + text + "\n") && keepAlive
    }

    private func send(_ fd: Int32, _ s: String) -> Bool {
        let bytes = Array(s.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    private static func find(_ b: [UInt8], _ pattern: [UInt8]) -> Int? {
        guard b.count >= pattern.count else { return nil }
        for i in 0...(b.count - pattern.count) where b[i] == pattern[0] && Array(b[i..<(i + pattern.count)]) == pattern { return i }
        return nil
    }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "json", "zarray", "zattrs", "zgroup", "zmetadata": return "application/json"
        case "html": return "text/html; charset=utf-8"
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "css": return "text/css"
        default: return (path as NSString).lastPathComponent.hasPrefix(".z") ? "application/json" : "application/octet-stream"
        }
    }

    static func reason(_ s: Int) -> String {
        [200: "OK", 204: "No Content", 206: "Partial Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
         416: "Range Not Satisfiable", 431: "Request Header Fields Too Large", 500: "Internal Server Error"][s] ?? "Status"
    }

    static func httpDate(_ t: time_t) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }
}
