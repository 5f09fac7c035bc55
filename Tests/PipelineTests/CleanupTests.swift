import Foundation
import XCTest
@testable import Pipeline
import NeuralNet
import TestSupport
import VolumeStore
import Run

/// Cleanup (Algorithm 1) tile by tile against scipy.ndimage.label + scikit-learn's KNeighborsClassifier (where their
/// answer is unique) and a brute-force version with brainmap's tie rules (everywhere), in 2-D and 3-D.
final class CleanupTests: XCTestCase {
    static let Z = 4, H = 64, W = 80

    /// Labels with 16×16 tiles: a VP component joined only through a tile corner (diagonal), a HYP spiral crossing
    /// many tiles, a ZI hole larger than a tile inside CTX, three equal WM components (a size tie), speckle noise
    /// (distance and vote ties), an unpredicted block inside the tissue; slice 1 shifted by one pixel and without ZI
    /// (an empty class), slice 2 without tissue, slice 3 never predicted.
    static func fixture() -> [UInt8] {
        var l = [UInt8](repeating: 0, count: Z * H * W)
        func set(_ z: Int, _ ys: Range<Int>, _ xs: Range<Int>, _ c: UInt8) {
            for y in ys { for x in xs { l[(z * H + y) * W + x] = c } }
        }
        for z in 0..<2 {
            let s = z   // slice 1 is slice 0 shifted right by one pixel
            set(z, 2..<62, (2 + s)..<(40 + s), 1); set(z, 2..<62, (40 + s)..<78, 3)
            // Speckle (misclassified pixels) first, so the structures below stay as drawn.
            var rng = SeededRandom(seed: UInt64(10 + z))
            for y in 2..<62 { for x in 2..<78 where l[(z * H + y) * W + x] != 0 && rng.next(below: 100) < 4 {
                l[(z * H + y) * W + x] = UInt8(1 + rng.next(below: z == 0 ? 6 : 5))
            } }
            set(z, 27..<32, (11 + s)..<(16 + s), 4); set(z, 32..<37, (16 + s)..<(21 + s), 4)   // joined at tile corner (32, 16): 50 px
            set(z, 4..<11, (44 + s)..<(50 + s), 4)                                            // 42 px
            for (y, x) in spiral(shift: s) { l[(z * H + y) * W + x] = 2 }
            set(z, 4..<8, (60 + s)..<(66 + s), 2)                                             // a small HYP blob
            let zi: UInt8 = z == 0 ? 6 : 1
            set(z, 40..<62, (2 + s)..<(26 + s), zi); set(z, 8..<28, (18 + s)..<(38 + s), zi)  // hole 20×20 > tile
            set(z, 30..<33, (5 + s)..<(8 + s), 5); set(z, 50..<53, (30 + s)..<(33 + s), 5); set(z, 56..<59, (70 + s)..<(73 + s), 5)
            set(z, 33..<37, (28 + s)..<(32 + s), 0)                                           // not predicted
        }
        return l
    }

    /// A square spiral (HYP), arms two pixels apart, crossing 16-px tiles many times.
    static func spiral(shift s: Int) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var y = 40, x = 61 + s, len = 1, dir = 0
        let steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
        for turn in 0..<40 {
            for _ in 0..<len {
                guard y >= 22, y < 58, x >= 44, x < 78 else { return out }
                out.append((y, x))
                y += steps[dir].0; x += steps[dir].1
            }
            dir = (dir + 1) % 4
            if turn % 2 == 1 { len += 2 }
        }
        return out
    }

    /// A run directory holding `labels` (16×16 chunks; slice 3's chunks never written) and run.json.
    static func makeRun(_ dir: String, _ labels: [UInt8]) async throws -> String {
        let run = dir + "/run.zarr"
        let a = try await ZarrArray.create(store: FileChunkStore(root: run), path: "labels",
                                           metadata: ArrayMetadata(shape: [Z, H, W], chunks: [1, 16, 16], dtype: .uint8))
        try await a.write(Box([0..<3, 0..<H, 0..<W]), Array(labels[0..<(3 * H * W)]))
        FileManager.default.createFile(atPath: run + "/run.json", contents: Data(#"{"identity": {"stride": "1"}}"#.utf8))
        return run
    }

    func testEqualsScipyAndScikitLearnIn2DAnd3D() async throws {
        let dir = PythonReference.tempDir("cleanup")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var labels = Self.fixture()
        let input = dir + "/labels.bin"
        try Data(labels).write(to: URL(fileURLWithPath: input))
        for i in (3 * Self.H * Self.W)..<labels.count { labels[i] = 0 }
        try Data(labels).write(to: URL(fileURLWithPath: input))
        for (threeD, conn) in [(false, 4), (false, 8), (true, 6), (true, 26)] {
            let run = try await Self.makeRun(dir + "/\(conn)", labels)
            var o = CleanupOptions(run: run)
            o.connectivity = conn; o.threeD = threeD
            let s = try await CleanupJob(options: o).run()
            XCTAssertEqual(s.slicesDone, 4)
            XCTAssertGreaterThan(s.removed, 500)
            let clean = try await VolumeSource.open(run + "/labels_clean")
            let got = try await clean.read(clean.fullBox)
            let missing = try await clean.readChunkIfPresent([3, 0, 0])
            XCTAssertNil(missing, "slice 3 was never predicted: no chunk written")

            let prefix = dir + "/ref\(conn)"
            try PythonReference.run("tools/reference/cleanup_reference.py",
                                    [input, "\(Self.Z)", "\(Self.H)", "\(Self.W)", "3", "\(conn)", "1=1,2=1,3=1,4=1,5=2,6=1", prefix] + (threeD ? ["--3d"] : []))
            let brute = [UInt8](try Data(contentsOf: URL(fileURLWithPath: prefix + ".brute.bin")))
            let sk = [UInt8](try Data(contentsOf: URL(fileURLWithPath: prefix + ".sklearn.bin")))
            let unique = [UInt8](try Data(contentsOf: URL(fileURLWithPath: prefix + ".unique.bin")))
            var diffBrute = 0, diffSk = 0, ambiguous = 0
            for i in got.indices {
                if got[i] != brute[i] { diffBrute += 1 }
                if unique[i] == 1 { if got[i] != sk[i] { diffSk += 1 } } else { ambiguous += 1 }
            }
            let label = "\(threeD ? "3-D" : "2-D") connectivity \(conn)"
            XCTAssertEqual(diffBrute, 0, "\(label): pixels differing from the brute-force reference")
            XCTAssertEqual(diffSk, 0, "\(label): pixels differing from scipy + scikit-learn where the k nearest are unique")
            XCTAssertGreaterThan(ambiguous, 0, "\(label): the fixture must contain distance ties")
            // The structures the fixture was built for.
            func at(_ z: Int, _ y: Int, _ x: Int) -> UInt8 { got[(z * Self.H + y) * Self.W + x] }
            XCTAssertEqual(at(0, 31, 15) == 4, conn == 8 || conn == 26, "\(label): the corner-joined VP pair wins over the 42-px block only with diagonals")
            XCTAssertEqual(at(0, 18, 28), 1, "\(label): the middle of the 20×20 ZI hole (larger than a 16² tile) becomes CTX")
            XCTAssertEqual(at(0, 31, 6), 5, "\(label): first WM component of three equal ones is kept")
            let path = Self.spiral(shift: 0)
            XCTAssertGreaterThan(path.count, 200)
            XCTAssertTrue(path.allSatisfy { at(0, $0.0, $0.1) == 2 }, "\(label): the spiral, one component across many tiles, is kept whole")
            XCTAssertEqual(at(0, 34, 29), 0, "\(label): not predicted stays 0")
            XCTAssertTrue((0..<(Self.H * Self.W)).allSatisfy { got[2 * Self.H * Self.W + $0] == 0 }, "\(label): a slice without tissue stays 0")
        }
    }

    /// Resume skips finished slices and cleans only the ones asked for since; other components replace labels_clean whole
    /// (staged, then swapped in) with a note naming the difference; --restart cleans every slice again.
    func testResumeParametersAndRestart() async throws {
        let dir = PythonReference.tempDir("cleanup-resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try await Self.makeRun(dir, Self.fixture())
        var o = CleanupOptions(run: run)
        o.slices = [0]
        let one = try await CleanupJob(options: o).run()
        XCTAssertEqual(one.slicesDone, 1)
        o.slices = nil
        // More slices: the one done is kept, the others are cleaned.
        let first = try await CleanupJob(options: o).run()
        XCTAssertEqual(first.slicesDone, 3); XCTAssertEqual(first.slicesAlreadyDone, 1)
        let k3 = ManifestFiles.files(run + "/labels_clean")
        let again = try await CleanupJob(options: o).run()
        XCTAssertEqual(again.slicesDone, 0); XCTAssertEqual(again.slicesAlreadyDone, 4)
        // Other --components (WM keeps 1 of its 3 equal components, not 2): a new labels_clean from scratch, equal
        // to that cleanup on a fresh copy. Over fewer slices than the old one cleaned, it is refused (they would vanish).
        o.components[5] = 1
        var fewer = o
        fewer.slices = [0]
        do { _ = try await CleanupJob(options: fewer).run(); XCTFail("dropping cleaned slices must be refused") }
        catch { XCTAssertTrue("\(error)".contains("leaves out slices 1,2,3") && "\(error)".contains("--slices 0,1,2,3"), "\(error)") }
        XCTAssertEqual(ManifestFiles.files(run + "/labels_clean"), k3, "nothing changed")
        let wm1 = try await CleanupJob(options: o).run()
        XCTAssertEqual(wm1.slicesDone, 4)
        XCTAssertTrue(wm1.notes.joined().contains("components: the run has CTX=1,HYP=1,STR=1,VP=1,WM=2,ZI=1, this command has CTX=1,HYP=1,STR=1,VP=1,WM=1,ZI=1"), "\(wm1.notes)")
        let fresh = try await Self.makeRun(dir + "/fresh", Self.fixture())
        var f = CleanupOptions(run: fresh); f.components = o.components
        _ = try await CleanupJob(options: f).run()
        XCTAssertEqual(ManifestFiles.files(run + "/labels_clean"), ManifestFiles.files(fresh + "/labels_clean"))
        let r = try Run.open(run)
        XCTAssertEqual(r.manifest.arrays["labels_clean"]?.generation, 2, "a second generation of labels_clean")
        XCTAssertNotEqual(ManifestFiles.files(run + "/labels_clean"), k3, "one WM component fewer")
        o.restart = true
        let restarted = try await CleanupJob(options: o).run()
        XCTAssertEqual(restarted.slicesDone, 4)
        o.restart = false
        o.connectivity = 6
        do { _ = try await CleanupJob(options: o).run(); XCTFail() } catch { XCTAssertTrue("\(error)".contains("--connectivity")) }
        XCTAssertEqual(try CleanupOptions.parseComponents("WM=3,CTX=0"), [5: 3, 1: 0])
        XCTAssertThrowsError(try CleanupOptions.parseComponents("BRAIN=1"))
    }

    /// The tie rules on their own: neighbours at equal distance are taken in (row, column) order; a tied vote goes to
    /// the smallest class; equal-size components are kept in order of their first pixel.
    func testTieRules() {
        var index = NeighbourIndex(height: 20, width: 20, cell: 4)
        // All four at distance 2 from (5, 5): order (3,5) c3, (5,3) c2, (5,7) c1, (7,5) c3.
        for (y, x, c) in [(7, 5, 3), (5, 7, 1), (5, 3, 2), (3, 5, 3)] as [(Int, Int, UInt8)] { index.insert(y: y, x: x, label: c) }
        index.insert(y: 15, x: 15, label: 6)
        index.build()
        XCTAssertEqual(index.vote(y: 5, x: 5, k: 1), 3, "nearest by (d², y, x): (3, 5)")
        XCTAssertEqual(index.vote(y: 5, x: 5, k: 2), 2, "c3 and c2 tie: the smaller class")
        XCTAssertEqual(index.vote(y: 5, x: 5, k: 3), 1, "c3, c2, c1 tie: the smallest class")
        XCTAssertEqual(index.vote(y: 5, x: 5, k: 4), 3, "c3 twice")
        XCTAssertEqual(index.vote(y: 19, x: 19, k: 1), 6, "far cells are reached")
        XCTAssertEqual(NeighbourIndex(height: 5, width: 5).vote(y: 1, x: 1, k: 3), 0, "no labelled pixel: 0")

        let l: [UInt8] = [1, 1, 0, 1, 1,
                          0, 0, 0, 0, 0,
                          1, 1, 0, 0, 0]
        let comps = l.withUnsafeBufferPointer { TileComponents(labels: $0, height: 3, width: 5, diagonal: false) }
        XCTAssertEqual(comps.count, 3)
        var table = ComponentTable()
        _ = table.add(comps) { $0 }
        XCTAssertEqual(table.kept([1: 2]).enumerated().filter(\.element).map(\.offset), [0, 1], "the first two of three equal ones")
    }
}
