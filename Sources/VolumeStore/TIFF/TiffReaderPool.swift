/// At most `capacity` TIFF files open at once, the most recently used kept (a band of a chunk's depth reads the
/// same few files for every row band). Closing is the reader's deinit.
final class TiffReaderPool {
    let files: [String], capacity: Int
    private var open: [(index: Int, reader: TiffReader)] = []

    init(files: [String], capacity: Int = 16) { self.files = files; self.capacity = max(1, capacity) }

    func reader(_ index: Int) throws -> TiffReader {
        if let k = open.firstIndex(where: { $0.index == index }) {
            let hit = open.remove(at: k)
            open.append(hit)
            return hit.reader
        }
        if open.count >= capacity { open.removeFirst() }
        let r = try TiffReader(path: files[index])
        open.append((index, r))
        return r
    }
}
