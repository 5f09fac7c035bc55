/// A dense float32 tensor, C order (NCHW for images). Storage is a Swift array: malloc'd, 16-byte aligned, which is
/// all OpenBLAS needs (it packs its operands itself).
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "tensor data (\(data.count)) does not match shape \(shape)")
        self.shape = shape; self.data = data
    }

    public init(zeros shape: [Int]) { self.init(shape: shape, data: .init(repeating: 0, count: shape.reduce(1, *))) }

    public var count: Int { data.count }
}

/// Errors of the network layer; messages name the tensor or file and say what was expected.
public enum NeuralNetError: Error, CustomStringConvertible, Sendable {
    case weights(path: String, reason: String)
    case shape(name: String, expected: [Int], got: [Int])
    case missing(name: String, path: String)
    case input(String)

    public var description: String {
        switch self {
        case let .weights(path, reason): return "weights file \(path): \(reason)"
        case let .shape(name, expected, got):
            return "tensor '\(name)' has shape \(got), expected \(expected): these weights are not for this network"
        case let .missing(name, path): return "weights file \(path) has no tensor '\(name)' (PyTorch state_dict names expected)"
        case let .input(s): return s
        }
    }
}
