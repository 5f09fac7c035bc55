import Foundation

/// A histogram of non-negative values on a log scale, mergeable across blocks and shards (counts add up), for a
/// quantile of a quantity over all pixels of a run without keeping them: `cluster --fit-steady`'s threshold on how
/// fast the averaged input changes. Bins are 1/200 of a decade from 10⁻²⁰ to 10²⁰ (a quantile is the upper edge of
/// its bin: within 1.2% of the exact one); 0 and values below the range count in the first bin, above it in the last.
struct ChangeHistogram: Codable, Sendable {
    static let perDecade = 200.0, lowest = -20.0, decades = 40.0
    var counts = [Int](repeating: 0, count: Int(decades * perDecade))
    var total: Int { counts.reduce(0, +) }

    mutating func add(_ values: [Double]) {
        for v in values where !v.isNaN {
            // +∞ (a change past Float's range when written) goes in the last bin, as any value above the range.
            let b = !v.isFinite ? counts.count - 1 : v > 0 ? Int(((log10(v) - Self.lowest) * Self.perDecade).rounded(.down)) : 0
            counts[min(max(b, 0), counts.count - 1)] += 1
        }
    }

    mutating func merge(_ o: ChangeHistogram) { for i in counts.indices { counts[i] += o.counts[i] } }

    /// The smallest bin edge with at least a fraction `q` of the values at or below it.
    func quantile(_ q: Double) -> Double {
        // Less a hair before rounding up: 0.07 × 100 is 7.000000000000001 in floating point, and 8 values are not 7%.
        let need = max(1, Int((q * Double(total) - 1e-9).rounded(.up)))
        var seen = 0
        for (i, c) in counts.enumerated() {
            seen += c
            if seen >= need { return pow(10, Self.lowest + Double(i + 1) / Self.perDecade) }
        }
        return .infinity
    }
}
