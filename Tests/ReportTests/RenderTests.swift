import Foundation
import XCTest
@testable import Report

/// The pieces under the images: the colour table, the footprint geometry, the HTTP range rules.
final class RenderTests: XCTestCase {
    func testViridisIsItsPublishedDefinition() {
        // The published anchors (matplotlib's viridis at 0, 0.5 and 1), and CIE L* rising at every step — the
        // property the colormap was designed for; a mistyped entry breaks one or the other.
        XCTAssertEqual(Colormap.viridis.count, 256)
        XCTAssertEqual(Colormap.viridis[0].hex, "#440154")
        XCTAssertEqual(Colormap.viridis[128].hex, "#21918c")
        XCTAssertEqual(Colormap.viridis[255].hex, "#fde725")
        func lstar(_ c: RGB) -> Double {
            func lin(_ v: UInt8) -> Double { let x = Double(v) / 255; return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4) }
            let y = 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b)
            return y > 0.008856 ? 116 * pow(y, 1.0 / 3) - 16 : 903.3 * y
        }
        let l = Colormap.viridis.map(lstar)
        // Evenly: 76 units of L* over 255 steps, each within 8-bit rounding of the mean step (0.30).
        for i in 1..<256 { XCTAssertEqual(l[i] - l[i - 1], 0.30, accuracy: 0.35, "L* step at \(i)") }
        XCTAssertEqual(l[255] - l[0], 76.0, accuracy: 1.0)
    }

    func testFootprintsPartitionTheRegionAndCentresLieInThem() {
        for (n, maxW) in [(130, 96), (2903, 2048), (50, 50), (7, 3), (1000, 16)] {
            let v = SliceView(z: 0, rows: 10..<(10 + n), cols: 5..<(5 + n), maxWidth: maxW)
            XCTAssertEqual(v.width, min(n, maxW))
            var seen = [Int](repeating: 0, count: v.width)
            for c in v.cols { seen[v.imageCol(c)] += 1 }
            XCTAssertTrue(seen.allSatisfy { $0 > 0 }, "every image column covers run columns")
            XCTAssertEqual(seen.reduce(0, +), n)
            for u in 0..<v.width { XCTAssertEqual(v.imageCol(v.centreCol(u)), u) }
            for u in 0..<v.height { XCTAssertEqual(v.imageRow(v.centreRow(u)), u) }
        }
    }

    func testRangeHeaders() {
        XCTAssertEqual(RangeRequest(header: nil, size: 100), .whole)
        XCTAssertEqual(RangeRequest(header: "bytes=0-9", size: 100), .part(start: 0, end: 9))
        XCTAssertEqual(RangeRequest(header: "bytes=90-", size: 100), .part(start: 90, end: 99))
        XCTAssertEqual(RangeRequest(header: "bytes=90-500", size: 100), .part(start: 90, end: 99))
        XCTAssertEqual(RangeRequest(header: "bytes=-10", size: 100), .part(start: 90, end: 99))
        XCTAssertEqual(RangeRequest(header: "bytes=-500", size: 100), .part(start: 0, end: 99))
        XCTAssertEqual(RangeRequest(header: "bytes=100-", size: 100), .unsatisfiable)
        XCTAssertEqual(RangeRequest(header: "bytes=0-1,5-6", size: 100), .whole)
        XCTAssertEqual(RangeRequest(header: "items=0-1", size: 100), .whole)
    }

    func testServerPathsStayInsideTheirMounts() throws {
        let dir = NSTemporaryDirectory() + "serve-paths-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/run/labels", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/run/labels/.zarray", contents: Data("{}".utf8))
        FileManager.default.createFile(atPath: dir + "/src/.zattrs", contents: Data("{}".utf8))
        FileManager.default.createFile(atPath: dir + "/secret", contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try StaticServer(mounts: [.init(prefix: "/", root: dir + "/run"), .init(prefix: "/source/", root: dir + "/src")], port: 0)
        defer { s.stop() }
        XCTAssertEqual(s.resolve("/labels/.zarray"), dir + "/run/labels/.zarray")
        XCTAssertEqual(s.resolve("/source/.zattrs"), dir + "/src/.zattrs")
        XCTAssertNil(s.resolve("/../secret"))
        XCTAssertNil(s.resolve("/source/../../secret"))
        XCTAssertNil(s.resolve("/labels/0.0.0"))
        XCTAssertNil(s.resolve("/labels"), "a directory without index.html is not served")
        XCTAssertEqual(HTTPRequest(head: "GET /a%2Fb%20c?x=1 HTTP/1.1\r\nRange: bytes=1-2")?.path, "/a/b c")
        XCTAssertEqual(HTTPRequest(head: "GET /a HTTP/1.1\r\nRange: bytes=1-2")?.headers["range"], "bytes=1-2")
    }
}
