import NeuralNet

/// A uniform sample of at most `size` rows (width d) of a stream, by reservoir sampling (Algorithm R) from a seeded
/// generator: the same stream and seed give the same sample. The rows are also kept in uniformly random order (the
/// filling phase places each row at a random slot, inside-out Fisher–Yates; replacements go to a uniform slot), so
/// any prefix is a uniform sample too: a map task publishes only the prefix a merge can take from it.
struct RowReservoir {
    let size: Int, d: Int
    private(set) var rows: [Double] = []
    /// Rows offered so far.
    private(set) var seen = 0
    private var rng: SeededRandom

    init(size: Int, d: Int, rng: SeededRandom) { self.size = size; self.d = d; self.rng = rng }

    /// Offers n rows (row-major n × d).
    mutating func add(_ x: [Double], rows n: Int) {
        for r in 0..<n {
            if seen < size {
                rows += x[(r * d)..<((r + 1) * d)]
                let j = rng.next(below: seen + 1)
                if j < seen { for t in 0..<d { rows.swapAt(j * d + t, seen * d + t) } }
            } else {
                let j = rng.next(below: seen + 1)
                if j < size { for t in 0..<d { rows[j * d + t] = x[r * d + t] } }
            }
            seen += 1
        }
    }
}
