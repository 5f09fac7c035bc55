import Foundation
import XCTest
import TestSupport
@testable import VolumeStore

/// Issue 17, cases 1 and 5 (odd metadata): a fill value the dtype cannot hold is refused at open, naming the array and
/// the value, exactly where zarr-python refuses; an array with a 0-length axis is not exported as an empty TIFF.
final class FillValueTests: XCTestCase {
    static let fixtures = PythonReference.packageRoot.appendingPathComponent("Fixtures/hostile").path

    /// Every fixture under Fixtures/hostile/fill (v2 and v3): brainmap opens exactly the ones zarr-python opens and
    /// reads their fill as zarr-python does; the others are refused at open with the path and the value.
    func testFillValuesAreCheckedAsZarrPythonDoes() async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures + "/fill").sorted()
        XCTAssertGreaterThanOrEqual(names.count, 28)
        let paths = names.map { Self.fixtures + "/fill/" + $0 }
        let verdicts = try PythonReference.run("tools/interop/zarr_open_check.py", paths)
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(verdicts.count, paths.count)
        var refused = 0
        for v in verdicts {
            let path = v[0]
            if v[1] == "refused" {
                refused += 1
                do {
                    _ = try await VolumeSource.open(path)
                    XCTFail("\(path): zarr-python refuses it, brainmap opened it")
                } catch {
                    let m = "\(error)"
                    XCTAssertTrue(m.contains(path) && m.contains("fill_value") && m.contains("cannot be stored in dtype"), m)
                    // The value itself is named, as the metadata spells it.
                    let spelled = ["nan": "NaN", "infinity": "Infinity", "minus-infinity": "-Infinity", "1e300": "1e+300",
                                   "minus1": "-1", "2.5": "2.5", "256": "256", "1e19": "1e+19"]
                    let key = spelled.keys.filter { path.hasSuffix("-" + $0) }.max { $0.count < $1.count }
                    XCTAssertTrue(key.map { m.contains("fill_value \(spelled[$0]!) ") } ?? false, "value of \(path) not in: \(m)")
                }
            } else {
                let a = try await VolumeSource.open(path)
                let first = try await a.read(Box([0..<1, 0..<1, 0..<1]))
                let want = v[2]
                switch a.dtype.kind {
                case .float: XCTAssertEqual(want, "nan", path); XCTAssertTrue(first.withUnsafeBytes { $0.load(as: Float.self) }.isNaN, path)
                default: XCTAssertEqual(String(first.withUnsafeBytes { a.dtype.native.integer(in: $0, at: 0) }), want, path)
                }
            }
        }
        XCTAssertEqual(refused, 20, "the fixtures hold 10 refused fills in each of v2 and v3")
    }

    /// The commands that used to crash at the first missing chunk (exit 132, a .tmp TIFF left behind, a crash reporter
    /// holding the caller's pipe) now stop at open with the message and leave nothing.
    func testCommandsRefuseABadFillAtOpenAndLeaveNothing() throws {
        let dir = PythonReference.tempDir("fill-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["v2-u1-nan", "v2-u1-infinity", "v3-u1-1e300", "v2-u1-minus1", "v2-u1-2.5"] {
            let src = Self.fixtures + "/fill/" + name
            for args in [["info", src], ["export-tiff", src, "--out", dir + "/out.tif"]] {
                let r = try BrainmapCLI.run(args, logDir: dir, tag: name)
                XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains(src) && r.stderr.contains("fill_value"), r.stderr)
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tif") || $0.contains(".tmp") }, [])
        }
    }

    /// An array with a 0-length axis is refused by export-tiff (it wrote an 8-byte TIFF with no pages).
    func testZeroLengthAxisIsNotExported() throws {
        let dir = PythonReference.tempDir("empty-export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try BrainmapCLI.run(["export-tiff", Self.fixtures + "/empty.zarr/raw", "--out", dir + "/e.tif"], logDir: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("0-length axis") && r.stderr.contains("[2, 0, 4]"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/e.tif"))
    }

    /// A uint64 fill past Int64.max is written back as the unsigned integer it is (the metadata writer trapped on it).
    func testLargeUnsignedFillRoundTrips() async throws {
        let dir = PythonReference.tempDir("u8-fill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for format in [2, 3] {
            let md = format == 2 ? ArrayMetadata(shape: [2], chunks: [2], dtype: DataType(kind: .uint, size: 8), fillValue: 1e19)
                                 : ArrayMetadata.v3(shape: [2], chunks: [2], dtype: DataType(kind: .uint, size: 8), fillValue: 1e19)
            _ = try await ZarrArray.create(store: FileChunkStore(root: dir + "/v\(format)"), path: "", metadata: md)
            let a = try await VolumeSource.open(dir + "/v\(format)")
            let v = try await a.read(a.fullBox)
            XCTAssertEqual(v.withUnsafeBytes { $0.load(as: UInt64.self) }, 10_000_000_000_000_000_000)
            let verdict = try PythonReference.run("tools/interop/zarr_open_check.py", [dir + "/v\(format)"])
            XCTAssertEqual(verdict.split(separator: " ").last.map(String.init), "10000000000000000000\n")
        }
    }
}
