import XCTest
@testable import Run

final class ManifestTests: XCTestCase {
    func testParametersNameEachDifference() {
        let p = Parameters([("k", "5"), ("method", "pca")])
        XCTAssertEqual(p.differences(from: ["k": "15", "method": "pca", "seed": "1"]),
                       ["k: the run has 15, this command has 5", "seed: the run has 1, this command has (absent)"])
    }
}
