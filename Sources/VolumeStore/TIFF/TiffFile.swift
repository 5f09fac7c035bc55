import CTiff
import Foundation

/// Shared libtiff plumbing: error capture and the element-type tags.
enum Tiff {
    /// Installed once per process: libtiff's errors are captured instead of printed.
    static let installHandlers: Void = { bm_tiff_install_handlers() }()

    static func lastError() -> String {
        let s = String(cString: bm_tiff_error())
        return s.isEmpty ? "libtiff reported a failure" : s
    }

    /// SampleFormat tag value for a data type (1 unsigned, 2 signed, 3 IEEE float).
    static func sampleFormat(_ t: DataType) -> UInt16 {
        switch t.kind { case .uint: 1; case .int: 2; case .float: 3 }
    }

    static func dataType(bits: UInt16, format: UInt16) -> DataType? {
        guard bits % 8 == 0, bits > 0 else { return nil }
        let size = Int(bits / 8)
        switch format {
        case 1: return [1, 2, 4, 8].contains(size) ? DataType(kind: .uint, size: size) : nil
        case 2: return [1, 2, 4, 8].contains(size) ? DataType(kind: .int, size: size) : nil
        case 3: return [4, 8].contains(size) ? DataType(kind: .float, size: size) : nil
        default: return nil
        }
    }
}

/// Writes a stack of 2-D pages (one per z) to a TIFF, row band by row band. BigTIFF when the data passes 2 GiB.
public final class TiffWriter {
    private let tif: OpaquePointer
    public let path: String
    public let dtype: DataType
    public let width: Int, height: Int
    private var page = 0
    private var row = 0

    public init(path: String, width: Int, height: Int, pages: Int, dtype: DataType) throws {
        _ = Tiff.installHandlers
        let big = width * height * pages * dtype.size > (1 << 31)
        guard let t = TIFFOpen(path, big ? "w8" : "w") else { throw VolumeError.tiff(path: path, reason: "cannot create: \(Self.whyNotWritable(path))") }
        tif = t; self.path = path; self.dtype = dtype; self.width = width; self.height = height
    }

    /// Why a file cannot be created at `path`, in words a user can act on.
    static func whyNotWritable(_ path: String) -> String {
        let fm = FileManager.default
        let dir = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return "\(path) is a directory" }
        if !fm.fileExists(atPath: dir, isDirectory: &isDir) { return "the directory \(dir) does not exist" }
        if !isDir.boolValue { return "\(dir) is not a directory" }
        if !fm.isWritableFile(atPath: dir) { return "no permission to write in \(dir)" }
        return Tiff.lastError()
    }

    private var closed = false
    deinit { if !closed { TIFFClose(tif) } }

    /// Flushes and closes the file; a write error at this point (a full disk) is reported.
    public func close() throws {
        guard !closed else { return }
        let flushed = TIFFFlush(tif) == 1
        closed = true
        TIFFClose(tif)
        guard flushed else { throw VolumeError.tiff(path: path, reason: "cannot finish the file (disk full?): \(Tiff.lastError())") }
    }

    private func startPage() throws {
        let ok = bm_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(width)) == 1
            && bm_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height)) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), UInt16(dtype.size * 8)) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLEFORMAT), Tiff.sampleFormat(dtype)) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK)) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG)) == 1
            && bm_tiff_set_u16(tif, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_NONE)) == 1
            && bm_tiff_set_u32(tif, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(max(1, 65536 / max(1, width * dtype.size)))) == 1
        guard ok else { throw VolumeError.tiff(path: path, reason: "cannot set page tags: \(Tiff.lastError())") }
    }

    /// Appends rows (native-endian, C order) to the current page; a page is finished after `height` rows.
    public func writeRows(_ data: [UInt8]) throws {
        let rowBytes = width * dtype.size
        guard data.count % rowBytes == 0 else { throw VolumeError.tiff(path: path, reason: "row data is not a whole number of rows") }
        try data.withUnsafeBytes { buf in
            for r in 0..<(data.count / rowBytes) {
                if row == 0 { try startPage() }
                guard TIFFWriteScanline(tif, UnsafeMutableRawPointer(mutating: buf.baseAddress! + r * rowBytes), UInt32(row), 0) == 1 else {
                    throw VolumeError.tiff(path: path, reason: "write failed at page \(page) row \(row): \(Tiff.lastError())")
                }
                row += 1
                if row == height {
                    guard TIFFWriteDirectory(tif) == 1 else { throw VolumeError.tiff(path: path, reason: "cannot finish page \(page): \(Tiff.lastError())") }
                    row = 0; page += 1
                }
            }
        }
    }
}

/// Reads a (multi-page) grayscale TIFF row band by row band, never a whole page stack.
public final class TiffReader {
    public struct Page: Equatable, Sendable { public let width: Int, height: Int; public let dtype: DataType }
    private let tif: OpaquePointer
    public let path: String
    public let pages: [Page]

    public init(path: String) throws {
        _ = Tiff.installHandlers
        bm_tiff_clear_error()
        guard let t = TIFFOpen(path, "r") else { throw VolumeError.tiff(path: path, reason: "cannot open: \(Tiff.lastError())") }
        tif = t; self.path = path
        var pages: [Page] = []
        repeat {
            var w: UInt32 = 0, h: UInt32 = 0, bits: UInt16 = 0, fmt: UInt16 = 1, spp: UInt16 = 1, planar: UInt16 = 1
            _ = bm_tiff_get_u32(t, UInt32(TIFFTAG_IMAGEWIDTH), &w)
            _ = bm_tiff_get_u32(t, UInt32(TIFFTAG_IMAGELENGTH), &h)
            _ = bm_tiff_get_u16_defaulted(t, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
            _ = bm_tiff_get_u16_defaulted(t, UInt32(TIFFTAG_SAMPLEFORMAT), &fmt)
            _ = bm_tiff_get_u16_defaulted(t, UInt32(TIFFTAG_SAMPLESPERPIXEL), &spp)
            _ = bm_tiff_get_u16_defaulted(t, UInt32(TIFFTAG_PLANARCONFIG), &planar)
            let n = pages.count
            guard spp == 1 else { TIFFClose(t); throw VolumeError.tiff(path: path, reason: "page \(n) has \(spp) samples per pixel; brainmap imports grayscale only") }
            guard TIFFIsTiled(t) == 0 else { TIFFClose(t); throw VolumeError.tiff(path: path, reason: "page \(n) is tiled; re-save it with strips (e.g. tifffile.imwrite(..., tile=None))") }
            guard let dt = Tiff.dataType(bits: bits, format: fmt) else {
                TIFFClose(t); throw VolumeError.tiff(path: path, reason: "page \(n) has \(bits)-bit samples of format \(fmt), not a supported integer or float type")
            }
            pages.append(Page(width: Int(w), height: Int(h), dtype: dt))
        } while TIFFReadDirectory(t) == 1
        _ = TIFFNumberOfDirectories(t)   // walks the chain's links again: a link cut off mid-way is reported here
        // The chain of pages must end cleanly: a next-page pointer that leads nowhere (libtiff reports an error
        // where a real last page reports none) is a file cut short or corrupt, whose missing pages must not
        // silently vanish from an import.
        guard String(cString: bm_tiff_error()).isEmpty else {
            TIFFClose(t)
            throw VolumeError.tiff(path: path, reason: "the file is cut short or corrupt after page \(pages.count - 1): the next page cannot be read (\(Tiff.lastError()))")
        }
        self.pages = pages
    }

    deinit { TIFFClose(tif) }

    /// Rows [r0, r1) of page `p`, native-endian, C order.
    public func readRows(page p: Int, _ rows: Range<Int>) throws -> [UInt8] {
        let pg = pages[p]
        guard TIFFSetDirectory(tif, UInt32(p)) == 1 else { throw VolumeError.tiff(path: path, reason: "cannot seek to page \(p): \(Tiff.lastError())") }
        var rps: UInt32 = 0
        if bm_tiff_get_u32(tif, UInt32(TIFFTAG_ROWSPERSTRIP), &rps) != 1 || rps == 0 || Int(rps) > pg.height { rps = UInt32(pg.height) }
        let rowBytes = pg.width * pg.dtype.size
        var out = [UInt8](repeating: 0, count: rows.count * rowBytes)
        var strip = [UInt8](repeating: 0, count: Int(rps) * rowBytes)
        var r = rows.lowerBound
        while r < rows.upperBound {
            let s = r / Int(rps)
            let first = s * Int(rps), last = min(first + Int(rps), pg.height)
            let n = strip.withUnsafeMutableBytes { TIFFReadEncodedStrip(tif, UInt32(s), $0.baseAddress, tmsize_t($0.count)) }
            guard n >= (last - first) * rowBytes else {
                throw VolumeError.tiff(path: path, reason: "strip \(s) of page \(p) is short or corrupt: \(Tiff.lastError())")
            }
            let take = min(last, rows.upperBound) - r
            out.withUnsafeMutableBytes { dst in
                strip.withUnsafeBytes { src in
                    (dst.baseAddress! + (r - rows.lowerBound) * rowBytes)
                        .copyMemory(from: src.baseAddress! + (r - first) * rowBytes, byteCount: take * rowBytes)
                }
            }
            r += take
        }
        return out
    }
}
