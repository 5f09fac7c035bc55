import CPNG
import Foundation

/// An 8-bit image in memory (row-major, interleaved channels: 1 grey, 3 RGB, 4 RGBA), written as PNG by libpng.
/// Report images are screen-sized (≤ `--width` wide), so one is held whole; the arrays they come from never are.
public struct Image: Sendable {
    public let width: Int, height: Int, channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        precondition([1, 3, 4].contains(channels) && width > 0 && height > 0)
        self.width = width; self.height = height; self.channels = channels
        pixels = [UInt8](repeating: fill, count: width * height * channels)
    }

    @inline(__always)
    public mutating func set(_ i: Int, _ c: RGB) {
        let o = i * channels
        pixels[o] = c.r; pixels[o + 1] = c.g; pixels[o + 2] = c.b
        if channels == 4 { pixels[o + 3] = 255 }
    }

    /// Writes the image to `path` through libpng (zlib level 1), atomically (a temporary file beside it, renamed).
    public func writePNG(to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        var message = [CChar](repeating: 0, count: 256)
        let ok = pixels.withUnsafeBytes { p in
            bm_png_write(tmp, p.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(width), UInt32(height), Int32(channels), &message)
        }
        guard ok != 0 else {
            unlink(tmp)
            throw ReportError.output("cannot write \(path): libpng says \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)); check the directory's permissions and free space")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ReportError.output("cannot move \(tmp) to \(path): \(String(cString: strerror(errno)))")
        }
    }
}
