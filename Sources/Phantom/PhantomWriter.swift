import Foundation
import VolumeStore

/// Writes a phantom as a Zarr v2 group (`raw`, `areas`, `layers`), chunk by chunk, `workers` chunks at a time.
/// Memory is a few chunks' worth per worker, whatever the volume's size.
public enum PhantomWriter {
    public static let voxelSizeMicrons = 1.17

    public static func groupAttributes(shape: [Int], seed: UInt64) -> [String: Any] {
        [
            "brainmap": [
                "kind": "phantom", "generator": "brainmap Phantom v1", "seed": seed, "shape": shape,
                "voxel_size_um": [voxelSizeMicrons, voxelSizeMicrons, voxelSizeMicrons],
                "areas": Dictionary(uniqueKeysWithValues: PhantomArea.allCases.map { (String($0.rawValue), PhantomArea.names[Int($0.rawValue)]) }),
                "layers": Dictionary(uniqueKeysWithValues: PhantomLayer.allCases.map { (String($0.rawValue), PhantomLayer.names[Int($0.rawValue)]) }),
                "description": "Procedural stand-in for the X-ray micro-CT thalamocortical sample of the paper (z, y, x).",
            ] as [String: Any],
        ]
    }

    /// `raw` is an OME-Zarr 0.4 multiscale image (levels 0…`pyramidLevels`, 2× in y and x each); `areas` and
    /// `layers` are plain arrays at full resolution.
    public static func write(to root: String, shape: [Int], seed: UInt64, chunks: [Int] = [1, 512, 512],
                             codec: (any Codec)? = nil, pyramidLevels: Int = 3, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                             shift: PhantomShift? = nil, anomaly: PhantomAnomaly? = nil,
                             progress: (@Sendable (Int, Int) -> Void)? = nil) async throws {
        let store = FileChunkStore(root: root)
        var attributes = groupAttributes(shape: shape, seed: seed)
        if shift != nil || anomaly != nil, var b = attributes["brainmap"] as? [String: Any] {
            if let shift { b["shift"] = shift.description }
            if let anomaly { b["anomaly"] = ["y": anomaly.y, "x": anomaly.x, "radius": anomaly.radius, "texture": "egg-crate grating, period \(PhantomAnomaly.period) px"] as [String: Any] }
            attributes["brainmap"] = b
        }
        try await ZarrGroup.create(store: store, attributes: attributes)
        let codec = try codec ?? BloscCodec(cname: "lz4", clevel: 5, shuffle: 1)
        let md = ArrayMetadata(shape: shape, chunks: chunks, dtype: .uint8, codec: codec)
        let dims: [String: Any] = ["_ARRAY_DIMENSIONS": ["z", "y", "x"]]
        let raw = try await ZarrArray.create(store: store, path: "raw/0", metadata: md, attributes: dims)
        let areas = try await ZarrArray.create(store: store, path: "areas", metadata: md, attributes: dims)
        let layers = try await ZarrArray.create(store: store, path: "layers", metadata: md, attributes: dims)
        let anomalyArray = anomaly == nil ? nil : try await ZarrArray.create(store: store, path: "anomaly", metadata: md, attributes: dims)
        let volume = { var v = PhantomVolume(shape: shape, seed: seed); v.shift = shift; v.anomaly = anomaly; return v }()
        let indices = raw.chunks(overlapping: raw.fullBox)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0, done = 0
            func launch() {
                let idx = indices[next]; next += 1
                group.addTask {
                    let box = raw.chunkBox(idx)
                    let block = volume.render(box)
                    try await raw.writeChunk(idx, pad(block.raw, box, chunks))
                    try await areas.writeChunk(idx, pad(block.areas, box, chunks))
                    try await layers.writeChunk(idx, pad(block.layers, box, chunks))
                    if let anomalyArray, let anomaly {
                        try await anomalyArray.writeChunk(idx, pad(anomaly.mask(box, areas: block.areas), box, chunks))
                    }
                }
            }
            while next < min(max(1, workers), indices.count) { launch() }
            while try await group.next() != nil {
                done += 1
                progress?(done, indices.count)
                if next < indices.count { launch() }
            }
        }
        let v = voxelSizeMicrons
        try await OMEZarr.buildPyramid(store: store, path: "raw", levels: pyramidLevels, axes: [("z", "space"), ("y", "space"), ("x", "space")],
                                       scale: [v, v, v], name: "phantom raw")
    }

    /// Edge chunks are stored full size: place the clipped block at the chunk's origin, zeros elsewhere.
    static func pad(_ data: [UInt8], _ box: Box, _ chunks: [Int]) -> [UInt8] {
        if box.size == chunks { return data }
        var out = [UInt8](repeating: 0, count: chunks.reduce(1, *))
        data.withUnsafeBytes { s in out.withUnsafeMutableBytes { d in
            copyBlock(from: s.baseAddress!, shape: box.size, at: [0, 0, 0], to: d.baseAddress!, shape: chunks, at: [0, 0, 0],
                      extent: box.size, elementSize: 1)
        } }
        return out
    }
}
