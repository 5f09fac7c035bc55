/// Streams between TIFF stacks and Zarr arrays, one chunk-row band at a time: memory stays at
/// (chunk depth × chunk height × width) elements, whatever the stack's size.
public enum TiffTransfer {
    /// Imports TIFF files (each one or many pages; all pages the same size and type) as a (z, y, x) Zarr v2 array.
    @discardableResult
    public static func importStack(files: [String], into store: FileChunkStore, path: String,
                                   chunks: [Int], codec: (any Codec)?,
                                   progress: ((Int, Int) -> Void)? = nil) async throws -> ZarrArray {
        // Files are opened one at a time: listing the pages opens and closes each in turn, and the bands read
        // through a small pool of open files, so a stack of thousands of single-page files never nears the
        // open-file limit (1,024 by default).
        var pages: [(file: Int, page: Int)] = [], first: TiffReader.Page?
        for (i, f) in files.enumerated() {
            let r = try TiffReader(path: f)
            for (p, page) in r.pages.enumerated() {
                if let first, page != first {
                    throw VolumeError.tiff(path: f, reason: "page \(p) is \(page.width)×\(page.height) \(page.dtype), but the stack is \(first.width)×\(first.height) \(first.dtype)")
                }
                first = first ?? page
                pages.append((i, p))
            }
        }
        guard let first else { throw VolumeError.tiff(path: files.first ?? "(none)", reason: "no pages to import") }
        let open = TiffReaderPool(files: files)
        guard chunks.count == 3, chunks.allSatisfy({ $0 > 0 }) else {
            throw VolumeError.malformedMetadata(path: path, reason: "chunks must be three positive numbers (z,y,x)")
        }
        let md = ArrayMetadata(shape: [pages.count, first.height, first.width], chunks: chunks, dtype: first.dtype, codec: codec)
        let array = try await ZarrArray.create(store: store, path: path, metadata: md)
        let rowBytes = first.width * first.dtype.size
        let total = md.grid[0] * md.grid[1]
        var done = 0
        for z0 in stride(from: 0, to: pages.count, by: chunks[0]) {
            let z1 = min(z0 + chunks[0], pages.count)
            for y0 in stride(from: 0, to: first.height, by: chunks[1]) {
                let y1 = min(y0 + chunks[1], first.height)
                var band = [UInt8](); band.reserveCapacity((z1 - z0) * (y1 - y0) * rowBytes)
                for z in z0..<z1 { band += try open.reader(pages[z].file).readRows(page: pages[z].page, y0..<y1) }
                try await array.write(Box(start: [z0, y0, 0], size: [z1 - z0, y1 - y0, first.width]), band)
                done += 1
                progress?(done, total)
            }
        }
        return array
    }

    /// Exports a (z, y, x) box of an array to a TIFF, one page per z, in bands of rows. All or nothing: the file is
    /// written under a temporary name beside `path` and renamed over it only when complete, so a failure leaves
    /// whatever was at `path` before untouched and no partial TIFF anywhere.
    public static func exportStack(_ array: ZarrArray, box: Box, to path: String,
                                   progress: ((Int, Int) -> Void)? = nil) async throws {
        guard array.shape.count == 3 else {
            throw VolumeError.unsupported(path: array.name, what: "export of a \(array.shape.count)-d array (need z, y, x)")
        }
        let tmp = OutputPath.temporary(beside: path)
        do {
            try await writeStack(array, box: box, to: tmp, progress: progress)
            try OutputPath.replace(path, with: tmp)
        } catch {
            OutputPath.remove(tmp)
            throw error
        }
    }

    private static func writeStack(_ array: ZarrArray, box: Box, to path: String, progress: ((Int, Int) -> Void)?) async throws {
        let writer = try TiffWriter(path: path, width: box.size[2], height: box.size[1], pages: box.size[0], dtype: array.dtype.native)
        let band = max(1, array.metadata.chunks[1])
        for z in box.start[0]..<box.end[0] {
            for y0 in stride(from: box.start[1], to: box.end[1], by: band) {
                let y1 = min(y0 + band, box.end[1])
                let rows = try await array.read(Box(start: [z, y0, box.start[2]], size: [1, y1 - y0, box.size[2]]))
                try writer.writeRows(rows)
            }
            progress?(z - box.start[0] + 1, box.size[0])
        }
        try writer.close()
    }
}
