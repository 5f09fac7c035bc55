import ArgumentParser
import Foundation
import Report
import VolumeStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a run (or any Zarr store or directory) over HTTP with byte ranges and CORS, for Neuroglancer or a remote zarr-python.",
        discussion: """
        DIR is served at /. For a run, its source volume (when it is a local path) is served at /source/ and its report
        (RUN-report, when made) at /report/; the command prints the URLs and a Neuroglancer state (JSON, and a link
        that carries it) showing raw + labels + an NMF factor. Ctrl-C stops it.
        """)

    @Argument(help: "The directory to serve (RUN.zarr, or any Zarr store).") var dir: String
    @Option(help: "Port (0: any free port).") var port = 8000
    @Option(help: "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "The NMF factor the Neuroglancer state shows (1-based).") var factor = 1
    @Flag(help: "Do not log requests.") var quiet = false

    func run() async throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("\(dir) is not a directory; give a run (RUN.zarr) or a Zarr store directory")
        }
        let root = dir.hasSuffix("/") && dir.count > 1 ? String(dir.dropLast()) : dir
        var mounts = [StaticServer.Mount(prefix: "/", root: root)]
        let contents = try? RunContents(root: root)
        var rawLocal: String?
        if let src = contents?.source, !src.contains("://") {
            let path = src.components(separatedBy: "?level=")[0]
            if FileManager.default.fileExists(atPath: path) { mounts.append(.init(prefix: "/source/", root: path)); rawLocal = path }
        }
        let report = ReportOptions(run: root).outDirectory
        if FileManager.default.fileExists(atPath: report + "/index.html") { mounts.append(.init(prefix: "/report/", root: report)) }

        let log: (@Sendable (String) -> Void)? = quiet ? nil : { @Sendable line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let server = try StaticServer(mounts: mounts, host: host, port: port, log: log)
        let shownHost = host == "0.0.0.0" ? (ProcessInfo.processInfo.hostName) : host
        let base = "http://\(shownHost):\(server.port)"
        say("serving \(root) at \(base)/")
        if let rawLocal { say("  source \(rawLocal) at \(base)/source/") }
        if mounts.contains(where: { $0.prefix == "/report/" }) { say("  report at \(base)/report/") }
        if let contents {
            let rawURL: String? = rawLocal != nil ? base + "/source" : (contents.source.flatMap { $0.hasPrefix("http") ? $0 : nil })
            let attrs = rawLocal.flatMap { p in (try? Data(contentsOf: URL(fileURLWithPath: p + "/.zattrs"))).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } }
            let state = NeuroglancerState.state(contents: contents, base: base, rawURL: rawURL, rawAttributes: attrs, slice: nil, factor: max(0, factor - 1))
            let json = String(decoding: try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
            say("Neuroglancer state (raw + labels + NMF factor \(factor)):\n\(json)")
            say("Neuroglancer link: \(NeuroglancerState.link(state))")
        }
        say("zarr-python: zarr.open_group(\"\(base)/\", mode=\"r\")   (Ctrl-C stops the server)")
        server.serve()
    }
}
