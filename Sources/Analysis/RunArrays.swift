import Foundation
import Pipeline
import VolumeStore

/// A prediction run's arrays for the analysis: the output grid (z, h, w) at the run's stride, its blocks (one chunk
/// of every array), and per block the rows (pixels × channels, float64) of a channel-first array under a mask.
public final class RunArrays: @unchecked Sendable {
    public let root: String
    public let stride: Int
    public let labels: ZarrArray
    public let context: SourceOptions
    public var depth: Int { labels.shape[0] }
    public var height: Int { labels.shape[1] }
    public var width: Int { labels.shape[2] }
    public var block: Int { labels.metadata.chunks[1] }

    public struct Block: Hashable, Sendable { public var z: Int, by: Int, bx: Int }

    /// The run's owner: manifest, step generations, lineage.
    public let run: Run

    public init(root: String, context: SourceOptions) async throws {
        run = try Run.open(root)
        self.root = root; self.context = context
        stride = run.stride
        do { labels = try await VolumeSource.open(try run.arrayPath("labels"), options: context) }
        catch { throw AnalysisError.input("\(root) has no readable labels array (\(error))") }
    }

    /// A channel-first (c, z, y, x) array of the run (features, pca, nmf), checked against the grid.
    public func channels(_ name: String) async throws -> ZarrArray {
        let a: ZarrArray
        do { a = try await VolumeSource.open(try run.arrayPath(name), options: context) }
        catch {
            if FileManager.default.fileExists(atPath: root + "/" + name) { throw AnalysisError.input("\(root)/\(name) cannot be read (\(error))") }
            let how = name == "features" ? "predict it with --outputs including features (a new --out: a run's outputs cannot change)"
                : "run the step that writes it first (brainmap factorize \(root) --method \(name) …)"
            throw AnalysisError.input("\(root) has no '\(name)' array yet; \(how)")
        }
        guard a.shape.count == 4, Array(a.shape.dropFirst()) == labels.shape, a.metadata.chunks[1] == 1,
              Array(a.metadata.chunks.suffix(2)) == Array(labels.metadata.chunks.suffix(2)), a.metadata.chunks[0] == a.shape[0],
              a.metadata.dtype.kind == .float else {
            throw AnalysisError.input("\(root)/\(name) is \(a.metadata.dtype.v3Name) \(a.shape) chunked \(a.metadata.chunks); expected float (c, z, y, x) chunked like labels")
        }
        return a
    }

    /// An integer (z, y, x) source at the run's grid or at the source's resolution (sampled at the stride):
    /// ROIs, annotations, masks.
    public func regions(_ source: String) async throws -> ZarrArray {
        let a = try await VolumeSource.open(source, options: context)
        guard a.shape.count == 3, a.shape[0] == depth, a.metadata.dtype.kind != .float,
              a.shape == labels.shape || ((a.shape[1] + stride - 1) / stride == height && (a.shape[2] + stride - 1) / stride == width) else {
            throw AnalysisError.input("\(source) is \(a.metadata.dtype.v3Name) \(a.shape); expected integer (z, y, x) ids on the run's grid \(labels.shape) or the source's (stride \(stride))")
        }
        return a
    }

    /// Every block of the slices, row-major.
    public func blocks(_ slices: [Int]) -> [Block] {
        let ny = (height + block - 1) / block, nx = (width + block - 1) / block
        return slices.flatMap { z in (0..<ny).flatMap { by in (0..<nx).map { Block(z: z, by: by, bx: $0) } } }
    }

    public func extent(_ b: Block) -> (h: Int, w: Int) { (min(block, height - b.by * block), min(block, width - b.bx * block)) }

    /// The block's labels (h × w), or nil when the block was never predicted.
    public func labels(_ b: Block) async throws -> [UInt8]? {
        guard let chunk = try await labels.readChunkIfPresent([b.z, b.by, b.bx]) else { return nil }
        return crop(chunk, b)
    }

    private func crop<T>(_ chunk: [T], _ b: Block) -> [T] {
        let (h, w) = extent(b)
        if h == block && w == block { return chunk }
        var out: [T] = []; out.reserveCapacity(h * w)
        for y in 0..<h { out += chunk[(y * block)..<(y * block + w)] }
        return out
    }

    /// Ids of an integer source under the block (h × w), sampled at the stride when the source is at full resolution.
    public func regionIds(_ a: ZarrArray, _ b: Block) async throws -> [Int64] {
        let (h, w) = extent(b)
        let s = a.shape == labels.shape ? 1 : stride
        let y0 = b.by * block * s, x0 = b.bx * block * s
        let ry = y0..<min(a.shape[1], y0 + (h - 1) * s + 1), rx = x0..<min(a.shape[2], x0 + (w - 1) * s + 1)
        let bytes = try await a.read(Box([b.z..<(b.z + 1), ry, rx]))
        let dt = a.metadata.dtype
        var out = [Int64](repeating: 0, count: h * w)
        bytes.withUnsafeBytes { raw in
            for y in 0..<h { for x in 0..<w {
                out[y * w + x] = dt.integer(in: raw, at: (y * s) * rx.count + x * s)
            } }
        }
        return out
    }

    /// The rows (n × c, float64) of a channel-first array at the block's pixels where `mask` is true and no channel is
    /// NaN (not predicted); also the pixels' indices within the block.
    public func rows(_ a: ZarrArray, _ b: Block, mask: [Bool]) async throws -> (x: [Double], pixels: [Int]) {
        let c = a.shape[0]
        guard let raw = try await a.readChunkIfPresent([0, b.z, b.by, b.bx]) else { return ([], []) }
        let (h, w) = extent(b)
        let plane = block * block
        let half = a.metadata.dtype.size == 2
        var pixels = [Int](), offsets = [Int]()
        raw.withUnsafeBytes { r in
            // Pixels under the mask whose first channel is not NaN (not predicted).
            for yy in 0..<h { for xx in 0..<w where mask[yy * w + xx] {
                let p = yy * block + xx
                let v = half ? Float(r.loadUnaligned(fromByteOffset: 2 * p, as: Float16.self)) : r.loadUnaligned(fromByteOffset: 4 * p, as: Float.self)
                if v.isNaN { continue }
                pixels.append(yy * w + xx); offsets.append(p)
            } }
        }
        // Channel by channel: each channel plane is read in order (the chunk is channel-first).
        var x = [Double](repeating: 0, count: pixels.count * c)
        raw.withUnsafeBytes { r in
            x.withUnsafeMutableBufferPointer { xb in
                if half {
                    let src = r.bindMemory(to: Float16.self)
                    for ch in 0..<c { let base = ch * plane; for (i, p) in offsets.enumerated() { xb[i * c + ch] = Double(Float(src[base + p])) } }
                } else {
                    let src = r.bindMemory(to: Float.self)
                    for ch in 0..<c { let base = ch * plane; for (i, p) in offsets.enumerated() { xb[i * c + ch] = Double(src[base + p]) } }
                }
            }
        }
        return (x, pixels)
    }

    // MARK: writing

    /// The step's channel-first float32 output (c, z, y, x) chunked like the run's features, NaN fill — staged by the
    /// run's owner when this generation replaces an older one.
    public func createChannels(_ name: String, channels: Int, session: StepSession) async throws -> ZarrArray {
        let md = ArrayMetadata(shape: [channels] + labels.shape, chunks: [channels, 1, block, block], dtype: .float32,
                               fillValue: .nan, codec: try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1))
        return try await session.array(name, metadata: md, dimensions: ["c", "z", "y", "x"], labelMap: false)
    }

    /// The step's uint8 (z, y, x) label map chunked like labels, 0 fill.
    public func createLabels(_ name: String, session: StepSession) async throws -> ZarrArray {
        let md = ArrayMetadata(shape: labels.shape, chunks: labels.metadata.chunks, dtype: .uint8, fillValue: 0,
                               codec: try BloscCodec(cname: "lz4", clevel: 5, shuffle: 1))
        return try await session.array(name, metadata: md, dimensions: ["z", "y", "x"], labelMap: true)
    }

    /// The pyramid of output `name` of this generation, built while the final pass writes its blocks (`completed`
    /// after each block of this shard, written or left empty) and finished by `finishPyramid`.
    public func pyramid(_ name: String, session: StepSession) -> BlockPyramids {
        BlockPyramids([session.pyramid(name)].compactMap { $0 }, rows: (height + block - 1) / block, cols: (width + block - 1) / block)
    }

    /// After the last pass merged (every shard wrote its blocks): the pyramid chunks not built yet — those over blocks
    /// of several shards. One process or a reduce builds them all (a map task has ended at its pass by then); shards
    /// started together each build their share of the slices and wait for the others before the arrays move into
    /// place.
    public func finishPyramid(_ p: BlockPyramids, slices zs: [Int], passes: StepPasses, tag: String) async throws {
        switch passes.role {
        case .whole, .reduce, .map:
            try p.finish(slices: zs, final: nil)
        case .together:
            let shard = passes.session.shard
            _ = try await passes.merged(tag + "-pyramid", compute: {
                try p.finish(slices: zs.enumerated().filter { shard.owns($0.offset) }.map(\.element), final: nil)
                return true
            }, merge: { _ in true })
        }
    }

    /// The inputs an analysis step reads, with their versions: the predicted slices (features, labels), the
    /// factorisation it runs on (when not the features), and sources outside the run (mask, ROIs).
    public func inputs(slices: [Int]?, on: String? = nil, sources: [String?] = []) throws -> [String: String] {
        var d = [Run.predictInput(slices: slices)]
        if let on, on != "features" {
            let step = run.manifest.arrays[on]?.step ?? on
            guard run.manifest.steps[step]?.complete ?? false else {
                throw AnalysisError.input("\(root)/\(on) is not complete (its step was interrupted or is still running); finish it first "
                                          + "(brainmap factorize \(root) --method \(on) …)")
            }
            // A factorisation of other predicted blocks than the run has now would mix old and new pixels: refuse.
            for (input, v) in run.manifest.steps[step]!.inputs where input.hasPrefix("predict@") && run.version(of: input) != v {
                throw AnalysisError.input("\(root)/\(on) is stale: the predicted slices changed since it was computed (blocks added or recomputed); "
                                          + "run factorize again first (\(run.manifest.steps[step]!.commandLine(at: run.root) ?? "brainmap factorize \(root) --method \(on) …"))")
            }
            d.append(Run.stepInput(step))
        }
        d += sources.compactMap { $0.map(Run.sourceInput) }
        return Dictionary(uniqueKeysWithValues: d.map { ($0, run.version(of: $0)) })
    }

    /// Writes per-pixel values (n × c, at `pixels` of the block; other pixels NaN) as the block's chunk.
    public func write(_ a: ZarrArray, _ b: Block, values: [Double], pixels: [Int]) async throws {
        let c = a.shape[0], (h, w) = extent(b)
        var out = [Float](repeating: .nan, count: c * h * w)
        for (i, p) in pixels.enumerated() { for ch in 0..<c { out[ch * h * w + p] = Float(values[i * c + ch]) } }
        try await a.write(Box([0..<c, b.z..<(b.z + 1), (b.by * block)..<(b.by * block + h), (b.bx * block)..<(b.bx * block + w)]),
                          out.withUnsafeBytes { Array($0) })
    }

    /// The result files' folder, RUN/analysis.
    public var analysisDirectory: String {
        let d = root + "/analysis"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

extension BlockPyramids {
    public func completed(_ b: RunArrays.Block) throws { try completed(z: b.z, by: b.by, bx: b.bx) }
}

/// Which pixels an analysis step takes.
public enum PixelMask: Sendable, Equatable {
    /// Predicted pixels (labels ≠ 0).
    case predicted
    /// Pixels of a class (labels == id), optionally eroded by a disk of `erode` source pixels.
    case within(classID: UInt8, erode: Int)
    /// Nonzero pixels of another source.
    case source(String)

    public var description: String {
        switch self {
        case .predicted: return "labels"
        case let .within(c, e): return "labels == \(c)" + (e > 0 ? " eroded by \(e) px" : "")
        case let .source(s): return s
        }
    }

    /// A source mask's path in one spelling (Run.canonicalSource).
    public var canonical: PixelMask {
        if case let .source(s) = self { return .source(Run.canonicalSource(s)) }
        return self
    }

    /// The mask a recorded `description` names (a step's parameters keep it as that string): its one inverse, so a
    /// reader compares masks, not spellings.
    public init(recorded d: String) {
        let within = "labels == ", eroded = " eroded by ", px = " px"
        guard d != "labels" else { self = .predicted; return }
        if d.hasPrefix(within) {
            let rest = d.dropFirst(within.count)
            if let c = UInt8(rest) { self = .within(classID: c, erode: 0); return }
            if let r = rest.range(of: eroded), rest.hasSuffix(px), let c = UInt8(rest[..<r.lowerBound]),
               let e = Int(rest[r.upperBound...].dropLast(px.count)), e > 0 {
                self = .within(classID: c, erode: e); return
            }
        }
        self = .source(d)
    }

    /// Whether at least `minimum` pixels of `blocks` are under the mask, stopping as soon as they are: checked before
    /// a step begins a new generation, so a command that would find too few rows (slices not predicted, a class never
    /// predicted) is refused without replacing the step's finished result and staling what reads it.
    func hasPixels(_ minimum: Int, _ run: RunArrays, _ blocks: [RunArrays.Block], source: ZarrArray?) async throws -> Bool {
        var found = 0
        for b in blocks {
            if let m = try await mask(run, b, source: source) { found += m.lazy.filter { $0 }.count }
            if found >= minimum { return true }
        }
        return false
    }

    /// The block's mask (h × w), or nil when the block was never predicted.
    func mask(_ run: RunArrays, _ b: RunArrays.Block, source: ZarrArray?) async throws -> [Bool]? {
        guard let l = try await run.labels(b) else { return nil }
        switch self {
        case .predicted: return l.map { $0 != 0 }
        case let .source(s):
            guard let a = source else { throw AnalysisError.input("mask \(s) not opened") }
            let ids = try await run.regionIds(a, b)
            return zip(l, ids).map { $0 != 0 && $1 != 0 }
        case let .within(c, erode):
            let r = erode / run.stride
            guard r > 0 else { return l.map { $0 == c } }
            return try await erodedClass(run, b, c, radius: r)
        }
    }

    /// labels == c at pixels whose whole disk of `radius` (run pixels) is c (outside the image is not c).
    private func erodedClass(_ run: RunArrays, _ b: RunArrays.Block, _ c: UInt8, radius r: Int) async throws -> [Bool] {
        let (h, w) = run.extent(b)
        let y0 = b.by * run.block, x0 = b.bx * run.block
        let ry = max(0, y0 - r)..<min(run.height, y0 + h + r), rx = max(0, x0 - r)..<min(run.width, x0 + w + r)
        let win = try await run.labels.read(Box([b.z..<(b.z + 1), ry, rx]))
        let W = rx.count, Hh = ry.count
        // Per row: distance to the nearest non-c pixel on the left and on the right (window edge counts as non-c
        // only where it is the image's edge; inside the image it was read).
        var left = [Int](repeating: 0, count: Hh * W), right = left
        for y in 0..<Hh {
            var last = rx.lowerBound == 0 ? -1 : -1_000_000
            for x in 0..<W { if win[y * W + x] != c { last = x }; left[y * W + x] = x - last }
            last = rx.upperBound == run.width ? W : 1_000_000
            for x in Swift.stride(from: W - 1, through: 0, by: -1) { if win[y * W + x] != c { last = x }; right[y * W + x] = last - x }
        }
        let half = (0...r).map { dy in Int(Double(r * r - dy * dy).squareRoot()) }
        var out = [Bool](repeating: false, count: h * w)
        for y in 0..<h { for x in 0..<w {
            let gy = y0 + y - ry.lowerBound, gx = x0 + x - rx.lowerBound
            guard win[gy * W + gx] == c else { continue }
            var ok = true
            for dy in -r...r {
                let yy = gy + dy
                guard yy >= 0, yy < Hh else { ok = false; break }   // beyond the image: not c
                let hw = half[abs(dy)]
                if left[yy * W + gx] <= hw || right[yy * W + gx] <= hw { ok = false; break }
            }
            out[y * w + x] = ok
        } }
        return out
    }
}
