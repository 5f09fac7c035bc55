import XCTest

extension XCTestCase {
    /// `a` within 1e-5 of `b`'s largest magnitude, elementwise, and free of NaN: the tolerance of kernels that sum
    /// the same products in another order (banded against per-image, FFT blocks against banded).
    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-6)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(what): max error \(worst) vs scale \(scale)", file: file, line: line)
        XCTAssertFalse(a.contains { $0.isNaN }, what + ": NaN", file: file, line: line)
    }
}
