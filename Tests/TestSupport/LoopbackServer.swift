import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real server on 127.0.0.1 for the remote-store tests: nginx serving a directory, or the fault-injecting proxy
/// (tools/fault_proxy.py). Stopped when `stop()` is called or the object goes away.
public final class LoopbackServer {
    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)" }
    private let process: Process
    private let stdin: Pipe?
    private let scratch: String?

    init(port: Int, process: Process, stdin: Pipe?, scratch: String?) {
        self.port = port; self.process = process; self.stdin = stdin; self.scratch = scratch
    }

    deinit { stop() }

    public func stop() {
        // Closing stdin stops the proxy; SIGKILL is the backstop (a child spawned by Foundation may have SIGTERM masked).
        try? stdin?.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        for _ in 0..<20 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        if let scratch { try? FileManager.default.removeItem(atPath: scratch) }
    }

    /// nginx (Debian's package, installed by tools/test.sh) serving `root` with byte ranges, in the foreground.
    public static func nginx(root: String) throws -> LoopbackServer {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let nginx else { throw NSError(domain: "LoopbackServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "nginx not installed; run tools/test.sh (it installs it)"]) }
        let port = freePort()
        let dir = PythonReference.tempDir("nginx")
        let conf = """
        daemon off;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log \(dir)/error.log warn;
        events { worker_connections 256; }
        http {
            access_log off;
            default_type application/octet-stream;
            client_body_temp_path \(dir)/body; proxy_temp_path \(dir)/proxy; fastcgi_temp_path \(dir)/fcgi;
            uwsgi_temp_path \(dir)/uwsgi; scgi_temp_path \(dir)/scgi;
            server { listen 127.0.0.1:\(port); root \(root); location / { } }
        }
        """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: nginx)
        p.arguments = ["-c", dir + "/nginx.conf", "-p", dir, "-e", dir + "/error.log"]
        try p.run()
        try waitForPort(port, process: p)
        return LoopbackServer(port: port, process: p, stdin: nil, scratch: dir)
    }

    /// tools/fault_proxy.py in front of `upstream`, with extra flags.
    public static func faultProxy(upstream: String, _ flags: [String]) throws -> LoopbackServer {
        try python("tools/fault_proxy.py", [upstream] + flags)
    }

    /// tools/fake_bossdb.py serving a Zarr array as a BossDB channel.
    public static func fakeBossDB(array: String, _ flags: [String]) throws -> LoopbackServer {
        try python("tools/fake_bossdb.py", [array] + flags)
    }

    /// A Python server script from tools/ that prints "PORT n" once listening and stops when stdin closes.
    static func python(_ script: String, _ args: [String]) throws -> LoopbackServer {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonReference.python)
        p.arguments = [PythonReference.packageRoot.appendingPathComponent(script).path] + args
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe; p.standardOutput = outPipe
        try p.run()
        var line = [UInt8]()
        while true {
            let d = outPipe.fileHandleForReading.readData(ofLength: 1)
            if d.isEmpty || d.first == 10 { break }
            line += d
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).replacingOccurrences(of: "PORT ", with: "")) else {
            throw NSError(domain: "LoopbackServer", code: 2, userInfo: [NSLocalizedDescriptionKey: "\(script) did not start"])
        }
        return LoopbackServer(port: port, process: p, stdin: inPipe, scratch: nil)
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForPort(_ port: Int, process: Process) throws {
        for _ in 0..<100 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            close(fd)
            if ok { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        throw NSError(domain: "LoopbackServer", code: 3, userInfo: [NSLocalizedDescriptionKey: "server did not start listening on port \(port)"])
    }
}
