/// Connected components of one tile of a label map: pixels connect when they carry the same class (1…255; 0 = not
/// predicted, never a component) and are neighbours (4- or 8-connectivity). Local ids are 1…count, numbered in raster
/// order of each component's first pixel, so a tile always gets the same ids (passes recompute them instead of
/// storing them).
struct TileComponents {
    let height: Int, width: Int
    /// Local id per pixel (0 = no component).
    var ids: [Int32]
    /// Per local id − 1: class, pixel count, raster index (within the tile) of the first pixel.
    var classes: [UInt8] = [], sizes: [Int] = [], firsts: [Int] = []
    var count: Int { classes.count }

    init(labels: UnsafeBufferPointer<UInt8>, height h: Int, width w: Int, diagonal: Bool) {
        height = h; width = w
        ids = [Int32](repeating: 0, count: h * w)
        // Pass 1: provisional labels with a union-find over them (at most one per pixel, plus the unused 0).
        let parent = UnsafeMutablePointer<Int32>.allocate(capacity: h * w + 1)
        defer { parent.deallocate() }
        var next: Int32 = 1
        func find(_ a: Int32) -> Int32 {
            var a = a
            while parent[Int(a)] != a { parent[Int(a)] = parent[Int(parent[Int(a)])]; a = parent[Int(a)] }
            return a
        }
        func union(_ a: Int32, _ b: Int32) {
            let ra = find(a), rb = find(b)
            if ra < rb { parent[Int(rb)] = ra } else if rb < ra { parent[Int(ra)] = rb }
        }
        /// The label to give a pixel that has `l` so far and a neighbour labelled `n`.
        func merge(_ l: Int32, _ n: Int32) -> Int32 {
            if l == 0 { return n }
            if n != l { union(l, n) }
            return l
        }
        ids.withUnsafeMutableBufferPointer { id in
            for y in 0..<h {
                for x in 0..<w {
                    let i = y * w + x, c = labels[i]
                    guard c != 0 else { continue }
                    var l: Int32 = 0
                    // Already-visited neighbours: left, and the row above (up; up-left and up-right with diagonals).
                    if x > 0 && labels[i - 1] == c { l = id[i - 1] }
                    if y > 0 {
                        let up = i - w
                        if labels[up] == c { l = merge(l, id[up]) }
                        if diagonal {
                            if x > 0 && labels[up - 1] == c { l = merge(l, id[up - 1]) }
                            if x + 1 < w && labels[up + 1] == c { l = merge(l, id[up + 1]) }
                        }
                    }
                    if l == 0 {
                        l = next
                        parent[Int(next)] = next
                        next += 1
                    }
                    id[i] = l
                }
            }
            // Pass 2: final ids in order of first pixel.
            var final = [Int32](repeating: 0, count: Int(next))
            for i in 0..<(h * w) where id[i] != 0 {
                let r = Int(find(id[i]))
                if final[r] == 0 {
                    classes.append(labels[i]); sizes.append(0); firsts.append(i)
                    final[r] = Int32(classes.count)
                }
                id[i] = final[r]
                sizes[Int(final[r]) - 1] += 1
            }
        }
    }
}

/// A union-find over every component of every tile (global ids), with the size, class and first pixel (global
/// raster index) of each set at its root. Roots are the smallest id of their set.
struct ComponentTable {
    private(set) var parent: [Int32] = []
    private(set) var size: [Int] = []
    private(set) var first: [Int] = []
    private(set) var cls: [UInt8] = []

    var count: Int { parent.count }

    /// Registers a tile's components; returns the global id of its local id 1.
    mutating func add(_ t: TileComponents, firstOffset: (Int) -> Int) -> Int {
        let base = parent.count
        for j in 0..<t.count {
            parent.append(Int32(base + j)); size.append(t.sizes[j]); first.append(firstOffset(t.firsts[j])); cls.append(t.classes[j])
        }
        return base
    }

    mutating func find(_ a: Int) -> Int {
        var a = a
        while Int(parent[a]) != a { parent[a] = parent[Int(parent[a])]; a = Int(parent[a]) }
        return a
    }

    mutating func union(_ a: Int, _ b: Int) {
        let ra = find(a), rb = find(b)
        guard ra != rb else { return }
        let (keep, drop) = ra < rb ? (ra, rb) : (rb, ra)
        parent[drop] = Int32(keep)
        size[keep] += size[drop]; first[keep] = min(first[keep], first[drop])
    }

    func classOf(_ id: Int) -> UInt8 { cls[id] }

    /// Per root: kept or not. For each class, the `keep[class]` largest sets; equal sizes are ordered by first pixel
    /// in raster order (z, y, x), earlier first.
    mutating func kept(_ keep: [UInt8: Int]) -> [Bool] {
        var roots: [UInt8: [Int]] = [:]
        for i in 0..<count where find(i) == i { roots[cls[i], default: []].append(i) }
        var out = [Bool](repeating: false, count: count)
        for (c, rs) in roots {
            let n = keep[c] ?? 0
            let sorted = rs.sorted { size[$0] != size[$1] ? size[$0] > size[$1] : first[$0] < first[$1] }
            for r in sorted.prefix(n) { out[r] = true }
        }
        for i in 0..<count { out[i] = out[find(i)] }
        return out
    }

    /// Components (sets) per class, for reports.
    mutating func setsPerClass() -> [UInt8: Int] {
        var out: [UInt8: Int] = [:]
        for i in 0..<count where find(i) == i { out[cls[i], default: 0] += 1 }
        return out
    }
}
