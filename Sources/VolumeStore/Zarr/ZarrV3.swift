import Foundation

/// Zarr v3 `zarr.json` documents: arrays (bytes + optional blosc codec, optionally inside `sharding_indexed`,
/// default or v2 chunk key encodings) and groups.
extension ArrayMetadata {
    public static func zarrV3(json data: [UInt8], path: String) throws -> ArrayMetadata {
        let obj = try jsonObject(data, path: path)
        guard (obj["zarr_format"] as? NSNumber)?.intValue == 3 else { throw VolumeError.malformedMetadata(path: path, reason: "zarr_format must be 3") }
        guard obj["node_type"] as? String == "array" else {
            throw VolumeError.malformedMetadata(path: path, reason: "node_type is not \"array\": this is a Zarr v3 group, not an array; name one of its arrays")
        }
        guard let shape = (obj["shape"] as? [NSNumber])?.map(\.intValue) else {
            throw VolumeError.malformedMetadata(path: path, reason: "'shape' must be a list of integers")
        }
        guard let dt = obj["data_type"] as? String else { throw VolumeError.malformedMetadata(path: path, reason: "'data_type' is missing") }
        guard var dtype = DataType(v3Name: dt) else { throw VolumeError.unsupported(path: path, what: "data_type \(dt)") }
        guard let grid = obj["chunk_grid"] as? [String: Any], grid["name"] as? String == "regular",
              let outer = ((grid["configuration"] as? [String: Any])?["chunk_shape"] as? [NSNumber])?.map(\.intValue) else {
            throw VolumeError.unsupported(path: path, what: "chunk_grid other than \"regular\"")
        }
        var defaultKeys = true, sep = "/"
        if let kc = obj["chunk_key_encoding"] as? [String: Any] {
            let name = kc["name"] as? String ?? "default"
            let conf = kc["configuration"] as? [String: Any]
            switch name {
            case "default": defaultKeys = true; sep = conf?["separator"] as? String ?? "/"
            case "v2": defaultKeys = false; sep = conf?["separator"] as? String ?? "."
            default: throw VolumeError.unsupported(path: path, what: "chunk_key_encoding \(name)")
            }
        }
        guard let codecs = obj["codecs"] as? [[String: Any]] else { throw VolumeError.malformedMetadata(path: path, reason: "'codecs' must be a list") }
        var chunks = outer
        var sharding: ShardingSpec? = nil
        var list = codecs
        if let i = codecs.firstIndex(where: { $0["name"] as? String == "sharding_indexed" }) {
            guard codecs.count == 1 else {
                throw VolumeError.unsupported(path: path, what: "codecs around sharding_indexed (it must be the only outer codec)")
            }
            guard let conf = codecs[i]["configuration"] as? [String: Any],
                  let inner = (conf["chunk_shape"] as? [NSNumber])?.map(\.intValue),
                  let innerCodecs = conf["codecs"] as? [[String: Any]] else {
                throw VolumeError.malformedMetadata(path: path, reason: "sharding_indexed needs chunk_shape and codecs")
            }
            let indexCodecs = (conf["index_codecs"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            guard indexCodecs.allSatisfy({ $0 == "bytes" || $0 == "crc32c" }) else {
                throw VolumeError.unsupported(path: path, what: "shard index codecs \(indexCodecs)")
            }
            let loc = ShardingSpec.IndexLocation(rawValue: conf["index_location"] as? String ?? "end") ?? .end
            sharding = ShardingSpec(shardShape: outer, indexLocation: loc, indexChecksum: indexCodecs.contains("crc32c"))
            chunks = inner
            list = innerCodecs
        }
        let parsed = try parseV3Codecs(list, rank: shape.count, path: path)
        dtype = DataType(kind: dtype.kind, size: dtype.size, bigEndian: parsed.bigEndian)
        let fill = try parseFill(obj["fill_value"], path: path)
        var md = ArrayMetadata(shape: shape, chunks: chunks, dtype: dtype, fillValue: fill, codecs: parsed.codecs,
                               transpose: parsed.transpose, separator: sep,
                               zarrFormat: 3, sharding: sharding, dimensionNames: obj["dimension_names"] as? [String])
        md.defaultKeyEncoding = defaultKeys
        try md.validate(path: path)
        return md
    }

    /// Parses a v3 codec list (array→array, then `bytes`, then bytes→bytes) into the pipeline's parts.
    static func parseV3Codecs(_ list: [[String: Any]], rank: Int, path: String) throws -> (transpose: [Int]?, bigEndian: Bool, codecs: [any Codec]) {
        var transpose: [Int]? = nil, bigEndian = false, codecs: [any Codec] = [], sawBytes = false
        for c in list {
            let name = c["name"] as? String ?? "?"
            let conf = c["configuration"] as? [String: Any] ?? [:]
            func int(_ k: String, _ d: Int) -> Int { (conf[k] as? NSNumber)?.intValue ?? d }
            do {
                switch name {
                case "transpose":
                    guard !sawBytes, let order = (conf["order"] as? [NSNumber])?.map(\.intValue), order.count == rank else {
                        throw VolumeError.malformedMetadata(path: path, reason: "transpose needs an 'order' of \(rank) axes, before 'bytes'")
                    }
                    transpose = order == Array(0..<rank) ? nil : order
                case "bytes":
                    sawBytes = true
                    bigEndian = (conf["endian"] as? String) == "big"
                case "blosc":
                    let shuffles = ["noshuffle": 0, "shuffle": 1, "bitshuffle": 2]
                    codecs.append(try BloscCodec(cname: conf["cname"] as? String ?? "lz4", clevel: int("clevel", 5),
                                                 shuffle: shuffles[conf["shuffle"] as? String ?? "shuffle"] ?? 1, blocksize: int("blocksize", 0)))
                case "zstd": codecs.append(try ZstdCodec(level: int("level", 0), checksum: conf["checksum"] as? Bool ?? false))
                case "gzip": codecs.append(try DeflateCodec(.gzip, level: int("level", 5)))
                case "numcodecs.zlib": codecs.append(try DeflateCodec(.zlib, level: int("level", 5)))
                case "numcodecs.lz4": codecs.append(LZ4Codec(acceleration: int("acceleration", 1)))
                case "crc32c": codecs.append(CRC32CCodec())
                case "sharding_indexed":
                    throw VolumeError.unsupported(path: path, what: "sharding_indexed nested inside sharding_indexed")
                default:
                    throw VolumeError.unsupported(path: path, what: "codec '\(name)' (brainmap reads transpose, bytes, blosc, zstd, gzip, crc32c, numcodecs.zlib, numcodecs.lz4 and sharding_indexed)")
                }
            } catch let e as CodecError { throw VolumeError.unsupported(path: path, what: e.reason) }
        }
        return (transpose, bigEndian, codecs)
    }

    /// The `zarr.json` document for this metadata, with `attributes`.
    public func zarrV3JSON(attributes: [String: Any] = [:]) -> [UInt8] {
        var codecs = pipeline.zarrV3Codecs()
        var grid = chunks
        if let s = sharding {
            grid = s.shardShape
            var index: [[String: Any]] = [["name": "bytes", "configuration": ["endian": "little"]]]
            if s.indexChecksum { index.append(["name": "crc32c"]) }
            codecs = [["name": "sharding_indexed", "configuration": [
                "chunk_shape": chunks, "codecs": codecs, "index_codecs": index, "index_location": s.indexLocation.rawValue]]]
        }
        let fill = fillJSON
        var obj: [String: Any] = [
            "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype.v3Name,
            "chunk_grid": ["name": "regular", "configuration": ["chunk_shape": grid]],
            "chunk_key_encoding": defaultKeyEncoding ? ["name": "default", "configuration": ["separator": separator]]
                                                     : ["name": "v2", "configuration": ["separator": separator]],
            "fill_value": fill, "codecs": codecs, "attributes": attributes,
        ]
        if let dimensionNames { obj["dimension_names"] = dimensionNames }
        return jsonBytes(obj)
    }
}
