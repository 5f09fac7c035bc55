import Foundation

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header mapping
/// names to {dtype, shape, data_offsets}, then the raw little-endian data. brainmap reads and writes F32 tensors.
public enum Safetensors {
    public static func load(path: String) throws -> [String: Tensor] { try loadWithMetadata(path: path).tensors }

    /// The tensors and the header's string metadata (`__metadata__`).
    public static func loadWithMetadata(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw NeuralNetError.weights(path: path, reason: "cannot read the file")
        }
        return try decodeWithMetadata([UInt8](d), path: path)
    }

    public static func decode(_ b: [UInt8], path: String) throws -> [String: Tensor] { try decodeWithMetadata(b, path: path).tensors }

    public static func decodeWithMetadata(_ b: [UInt8], path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard b.count >= 8 else { throw NeuralNetError.weights(path: path, reason: "shorter than the 8-byte header length") }
        var n64: UInt64 = 0
        for i in 0..<8 { n64 |= UInt64(b[i]) << (8 * UInt64(i)) }
        // Compared without adding, so a hostile length cannot overflow.
        guard n64 > 0, n64 <= UInt64(b.count - 8) else { throw NeuralNetError.weights(path: path, reason: "header length \(n64) exceeds the file (\(b.count) bytes); not a safetensors file?") }
        let n = Int(n64)
        guard let header = try? JSONSerialization.jsonObject(with: Data(b[8..<(8 + n)])) as? [String: Any] else {
            throw NeuralNetError.weights(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + n
        var out: [String: Tensor] = [:]
        for (name, v) in header where name != "__metadata__" {
            guard let info = v as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = (info["shape"] as? [NSNumber])?.map(\.intValue),
                  let offs = (info["data_offsets"] as? [NSNumber])?.map(\.intValue), offs.count == 2 else {
                throw NeuralNetError.weights(path: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard dtype == "F32" else {
                throw NeuralNetError.weights(path: path, reason: "tensor '\(name)' is \(dtype); brainmap loads F32 (convert with tools/export_weights.py)")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !o, p <= (b.count - dataStart) / 4 else {
                    throw NeuralNetError.weights(path: path, reason: "tensor '\(name)' shape \(shape) does not fit in the file")
                }
                count = p
            }
            guard offs[0] >= 0, offs[1] >= offs[0], offs[1] <= b.count - dataStart, offs[1] - offs[0] == count * 4 else {
                throw NeuralNetError.weights(path: path, reason: "tensor '\(name)' data \(offs) does not fit shape \(shape) or the file")
            }
            var data = [Float](repeating: 0, count: count)
            data.withUnsafeMutableBytes { dst in
                b.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(dataStart + offs[0])..<(dataStart + offs[1])])) }
            }
            out[name] = Tensor(shape: shape, data: data)
        }
        return (out, header["__metadata__"] as? [String: String] ?? [:])
    }

    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var h = [UInt8]((try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8))
        while (8 + h.count) % 8 != 0 { h.append(0x20) }  // pad so the data is 8-byte aligned, as the reference does
        var out = [UInt8](); out.reserveCapacity(8 + h.count + offset)
        for i in 0..<8 { out.append(UInt8((h.count >> (8 * i)) & 0xff)) }
        out += h
        for name in names { tensors[name]!.data.withUnsafeBytes { out += $0 } }
        return out
    }

    public static func save(_ tensors: [String: Tensor], path: String, metadata: [String: String] = [:]) throws {
        do { try Data(encode(tensors, metadata: metadata)).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw NeuralNetError.weights(path: path, reason: "cannot write: \(error.localizedDescription)") }
    }
}
