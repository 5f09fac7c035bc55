import Foundation

/// Time and executed FLOPs per stage of the engine, for `brainmap bench cnn --profile`.
///
/// The engine takes an optional profile and marks only stage boundaries (a few dozen per tile or patch, each a
/// clock read), so a run without one pays a nil test per boundary and nothing in the inner loops. One profile per
/// thread (no locking while it runs); `merge` sums them afterwards. A lap charges the time since the previous lap
/// to (current layer, kind), times `threads` for calls that keep that many BLAS threads busy: every figure is in
/// thread-seconds, so the stages plus `idle` add up to wall time × threads.
public final class EngineProfile: @unchecked Sendable {
    public enum Layer: Int, CaseIterable, Sendable {
        case tile, conv1, conv2, conv3, conv4, fc1, fc2, fc3
        public var name: String { self == .tile ? "tile" : "\(self)" }
    }
    public enum Kind: Int, CaseIterable, Sendable {
        /// Fresh zero-filled buffers (the memset is a full pass over them).
        case alloc
        /// Copies and layout changes: tile extraction and placement, im2col, gathers and scatters.
        case layout
        case gemm, bias, pool
        /// Layers by a transform (FFT: fc1, conv2; Winograd: conv3 and conv4 in training): the gather and forward
        /// transforms, the per-bin products (fc1: cgemm3m; conv2 and Winograd: C kernels on packed weights), the
        /// inverse transforms (fc1: their gather is its layout, their bias, ReLU and scatter its bias; conv2: bias,
        /// ReLU and pool are its pool; Winograd: bias, ReLU and pool are fused into its inverse).
        case fftForward, fftProduct, fftInverse
        /// A direct convolution fused with its pool (conv1: `ConvLayer.directForwardPooled`), or its weight gradient.
        case direct
        /// Workers waiting for the last tile (wall × threads − busy).
        case idle
        public var name: String {
            switch self {
            case .alloc: "alloc+zero"; case .layout: "copy/layout"; case .gemm: "sgemm"; case .bias: "bias(+ReLU)"
            case .pool: "ReLU+maxpool"; case .fftForward: "transform forward (+gather)"; case .fftProduct: "per-bin products"
            case .fftInverse: "transform inverse"; case .direct: "direct conv (+pool)"; case .idle: "thread idle"
            }
        }
    }

    public var layer: Layer = .tile
    /// Training's backward pass: laps are charged to the layer's backward stages (the same kinds, listed apart).
    public var backward = false
    /// BLAS threads the next laps' work occupies.
    public var threads = 1
    private var ns: [UInt64]
    private var flops: [Double]
    private var last: UInt64 = 0

    public init() {
        ns = .init(repeating: 0, count: 2 * Layer.allCases.count * Kind.allCases.count)
        flops = .init(repeating: 0, count: ns.count)
    }

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Starts the clock; the next lap is charged from here.
    public func start() { last = Self.now() }

    /// Charges the time since the previous lap (or start) to the current layer's `kind`, with the FLOPs it executed.
    @inline(__always) public func lap(_ kind: Kind, flops f: Double = 0) {
        let t = Self.now()
        let i = ((backward ? Layer.allCases.count : 0) + layer.rawValue) * Kind.allCases.count + kind.rawValue
        ns[i] &+= (t &- last) &* UInt64(threads)
        flops[i] += f
        last = t
    }

    /// Thread-seconds charged so far.
    public var busySeconds: Double { Double(ns.reduce(0, &+)) / 1e9 }

    /// Adds `seconds` of idle time.
    public func addIdle(seconds: Double) {
        ns[Layer.tile.rawValue * Kind.allCases.count + Kind.idle.rawValue] &+= UInt64(max(0, seconds) * 1e9)
    }

    public func merge(_ other: EngineProfile) {
        for i in ns.indices { ns[i] &+= other.ns[i]; flops[i] += other.flops[i] }
    }

    /// The non-empty stages in network order, the forward pass's then the backward pass's (layers last to first):
    /// (layer, kind, backward, thread-seconds, FLOPs).
    public var stages: [(layer: Layer, kind: Kind, backward: Bool, seconds: Double, flops: Double)] {
        let L = Layer.allCases.count
        return [false, true].flatMap { back in (back ? Layer.allCases.reversed() : Layer.allCases).flatMap { l in Kind.allCases.compactMap { k in
            let i = ((back ? L : 0) + l.rawValue) * Kind.allCases.count + k.rawValue
            return ns[i] == 0 && flops[i] == 0 ? nil : (l, k, back, Double(ns[i]) / 1e9, flops[i])
        } } }
    }
}
