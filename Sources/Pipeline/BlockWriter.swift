import VolumeStore

/// Turns a block's outputs into one chunk per output array and stores them durably (fsync of each file and of its
/// directory), synchronously: it runs on the pipeline's writer thread.
struct BlockWriter: Sendable {
    let run: RunStore
    let precision: OutputPrecision

    /// Writes every output chunk of the block; returns the bytes written.
    func write(_ r: BlockResult) throws -> Int {
        var written = 0
        for (kind, array) in run.arrays.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let chunk = chunkBytes(kind, r, array.metadata)
            let encoded = try array.encodeChunk(chunk)
            try run.store.putSync(array.chunkKey(kind.chunkIndex(r.block, grid: run.grid)), encoded)
            written += encoded.count
        }
        return written
    }

    /// The full-size chunk (C, 1, B, B) of a block: its pixels at the chunk's origin, fill values elsewhere.
    func chunkBytes(_ kind: OutputKind, _ r: BlockResult, _ md: ArrayMetadata) -> [UInt8] {
        let B = run.grid.block, h = r.block.height, w = r.block.width, C = kind.channels
        if kind == .labels {
            var out = [UInt8](repeating: 0, count: B * B)
            for y in 0..<h { for x in 0..<w { out[y * B + x] = r.labels[y * w + x] } }
            return out
        }
        let src: UnsafeMutableBufferPointer<Float> = switch kind {
        case .probabilities: r.probabilities
        case .features: r.features
        case .anomaly: r.anomaly
        default: r.entropy
        }
        // Built straight into the chunk's bytes: a typed array copied into bytes held a third feature-sized buffer
        // at the writer's peak (the plan counts two: this chunk and its encoded copy).
        func assemble<T>(_ fill: T, _ convert: (Float) -> T) -> [UInt8] {
            let n = h * w, size = MemoryLayout<T>.stride
            var out = [UInt8](repeating: 0, count: C * B * B * size)
            out.withUnsafeMutableBytes { o in
                for i in 0..<(C * B * B) { o.storeBytes(of: fill, toByteOffset: i * size, as: T.self) }
                for c in 0..<C { for y in 0..<h { for x in 0..<w {
                    o.storeBytes(of: convert(src[c * n + y * w + x]), toByteOffset: ((c * B + y) * B + x) * size, as: T.self)
                } } }
            }
            return out
        }
        switch precision {
        case .f32: return assemble(Float.nan) { $0 }
        case .f16: return assemble(Float16.nan) { Float16($0) }
        }
    }
}
