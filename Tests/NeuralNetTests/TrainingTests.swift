import Foundation
import XCTest
@testable import NeuralNet
import TestSupport

/// Backpropagation and Adam: every layer against finite differences, the whole step against JAX's autodiff (float64)
/// on the paper's architecture, and against a committed JAX fixture of a small net (runs without Python).
final class TrainingTests: XCTestCase {
    /// A small member of the paper's family (same layer kinds, tiny sizes): 54² input, padding on conv1.
    static let tiny = NetworkShape(input: 54, inChannels: 3,
                                   convs: [.init(out: 4, k: 7, pad: 1), .init(out: 5, k: 5, pad: 0), .init(out: 6, k: 3, pad: 0),
                                           .init(out: 7, k: 3, pad: 0)],
                                   linears: [.init(out: 16, relu: true), .init(out: 8, relu: false), .init(out: 6, relu: false)],
                                   dropout: 0.3)

    func randoms(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var r = SeededRandom(seed: seed)
        return (0..<n).map { _ in (2 * r.nextFloat() - 1) * scale }
    }

    // MARK: layers against finite differences

    /// L = Σ r·conv(x): linear in W, b and x, so central differences are exact up to float rounding.
    func testConvolutionGradientsWithPaddingAndDilation() {
        let cin = 2, cout = 3, k = 3, h = 9, w = 8, d = 2, p = 1
        // values[0] = weight, values[1] = bias, values[2] = x.
        var values = [randoms(cout * cin * k * k, seed: 1), randoms(cout, seed: 2), randoms(cin * h * w, seed: 3)]
        let probe = ConvLayer(weight: values[0], bias: values[1], cin: cin, cout: cout, k: k)
        let (ho, wo) = probe.outputSize(h, w, dilation: d, padding: p)
        let r = randoms(cout * ho * wo, seed: 4)
        func loss(_ v: [[Float]]) -> Double {
            let layer = ConvLayer(weight: v[0], bias: v[1], cin: cin, cout: cout, k: k)
            var y = [Float](repeating: 0, count: cout * ho * wo), col: [Float] = []
            layer.forwardWhole(v[2], h: h, w: w, dilation: d, padding: p, weight: v[0], bias: v[1], y: &y, col: &col)
            return zip(y, r).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        var dW = [Float](repeating: 0, count: values[0].count), db = [Float](repeating: 0, count: cout)
        var dx = [Float](repeating: 0, count: values[2].count), col: [Float] = [], dcol: [Float] = []
        probe.backward(values[2], h: h, w: w, dilation: d, padding: p, weight: values[0], dy: r, dW: &dW, db: &db, dx: &dx,
                       col: &col, dcol: &dcol)
        for (a, (name, analytic)) in [("dW", dW), ("db", db), ("dx", dx)].enumerated() {
            for i in values[a].indices {
                var v = values
                v[a][i] += 0.01; let up = loss(v)
                v[a][i] -= 0.02; let down = loss(v)
                XCTAssertEqual(Double(analytic[i]), (up - down) / 0.02, accuracy: 2e-3, "\(name)[\(i)]")
            }
        }
        XCTAssertGreaterThan(dx.map(abs).max()!, 0.1, "the probe must reach the input")
    }

    /// L = Σ r·maxpool(ReLU(x)) with distinct values: piecewise linear, central differences exact away from kinks.
    func testReluMaxPoolGradient() {
        let c = 2, h = 8, w = 6
        var x = randoms(c * h * w, seed: 5)
        let (ho, wo) = MaxPool.outputSize(h, w, stride: 2, dilation: 1)
        let r = randoms(c * ho * wo, seed: 6)
        var out = [Float](repeating: 0, count: c * ho * wo), arg = [Int32](repeating: 0, count: out.count)
        func loss() -> Double {
            MaxPool.forwardRecording(x, channels: c, h: h, w: w, stride: 2, dilation: 1, out: &out, argmax: &arg)
            return zip(out, r).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        _ = loss()
        var dx = [Float](repeating: 0, count: x.count)
        MaxPool.backward(r, pooled: out, argmax: arg, channels: c, h: h, w: w, outputs: ho * wo, dInput: &dx)
        for i in x.indices {
            let v = x[i]
            x[i] = v + 1e-3; let up = loss()
            x[i] = v - 1e-3; let down = loss()
            x[i] = v
            XCTAssertEqual(Double(dx[i]), (up - down) / 2e-3, accuracy: 1e-3, "dx[\(i)]")
        }
        XCTAssertGreaterThan(dx.filter { $0 != 0 }.count, 4, "some inputs must receive gradient")
        XCTAssertLessThanOrEqual(dx.filter { $0 != 0 }.count, ho * wo * c, "at most one input per output")
    }

    /// The whole tiny net with dropout: every parameter of a sample against central differences of the mean loss.
    func testWholeNetworkGradientMatchesFiniteDifferences() {
        let s = Self.tiny, n = 3
        var params = s.initialParameters(seed: 7)
        let images = randoms(n * s.input * s.input, seed: 8).map { ($0 + 1) / 2 }
        let labels = [0, 3, 5]
        let masks = Backprop.dropoutMasks(shape: s, seed: 9, stream: 0, first: 0, count: n)
        let bp = Backprop(shape: s, threads: 2)
        func loss() -> Double {
            images.withUnsafeBufferPointer { bp.run(parameters: params, images: $0, labels: labels, dropout: masks, gradients: false).lossSum / Double(n) }
        }
        let grads = images.withUnsafeBufferPointer { bp.run(parameters: params, images: $0, labels: labels, dropout: masks, gradients: true).gradients }
        var checked = 0
        for (t, (name, _)) in s.parameterShapes.enumerated() {
            let count = params[t].count
            for i in Swift.stride(from: 0, to: count, by: max(1, count / 12)) {
                let v = params[t].data[i]
                params[t].data[i] = v + 1e-3; let up = loss()
                params[t].data[i] = v - 1e-3; let down = loss()
                params[t].data[i] = v
                let fd = (up - down) / 2e-3
                XCTAssertEqual(Double(grads[t][i]), fd, accuracy: 2e-3 + 0.02 * abs(fd), "\(name)[\(i)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 120)
        XCTAssertGreaterThan(grads[0].map(abs).max()!, 1e-4, "conv1 must receive gradient")
    }

    // MARK: against JAX

    /// Loss, every gradient and the parameters after one Adam step of the paper's network (both forms), batch of 4
    /// with dropout, against JAX in float64.
    func testPaperNetworkStepMatchesJAX() throws {
        for form in NetworkShape.Form.allCases {
            let s = NetworkShape.paper(form), n = 4
            let params = s.initialParameters(seed: 11)
            let images = randoms(n * s.input * s.input, seed: 12).map { ($0 + 1) / 2 }
            let labels = [0, 2, 4, 5]
            let masks = Backprop.dropoutMasks(shape: s, seed: 13, stream: 0, first: 0, count: n)
            let ref = try Self.jaxStep(shape: s, params: params, images: images, labels: labels, masks: masks)
            try Self.compare(shape: s, params: params, images: images, labels: labels, masks: masks, reference: ref, label: form.rawValue)
        }
    }

    /// The same on the committed fixture (tools/make_training_fixture.py): runs where Python is not installed.
    func testTinyNetworkStepMatchesCommittedJAXFixture() throws {
        let path = PythonReference.packageRoot.appendingPathComponent("Fixtures/training/tiny_step.safetensors").path
        let f = try Safetensors.load(path: path)
        let s = Self.tiny
        let params = s.parameterShapes.map { f[$0.0]! }
        let labels = f["labels"]!.data.map { Int($0) }
        try Self.compare(shape: s, params: params, images: f["images"]!.data, labels: labels, masks: f["masks"]!.data,
                         reference: f, label: "fixture")
    }

    /// Thread count changes only the summation order; the same seed and threads give the same bits.
    func testDeterministicForSeedAndThreads() {
        let s = Self.tiny, n = 8
        let params = s.initialParameters(seed: 21)
        let images = randoms(n * s.input * s.input, seed: 22).map { ($0 + 1) / 2 }
        let labels = (0..<n).map { $0 % 6 }
        let masks = Backprop.dropoutMasks(shape: s, seed: 23, stream: 1, first: 0, count: n)
        func grads(_ threads: Int) -> [[Float]] {
            images.withUnsafeBufferPointer { Backprop(shape: s, threads: threads).run(parameters: params, images: $0, labels: labels, dropout: masks, gradients: true).gradients }
        }
        let a = grads(2), b = grads(2), c = grads(1)
        XCTAssertEqual(a, b)
        for (x, y) in zip(a, c) { for (u, v) in zip(x, y) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        // Masks depend on the sample's index, not on how a batch is cut.
        let whole = Backprop.dropoutMasks(shape: s, seed: 23, stream: 1, first: 0, count: n)
        let tail = Backprop.dropoutMasks(shape: s, seed: 23, stream: 1, first: 5, count: 3)
        XCTAssertEqual(Array(whole[(5 * s.dropoutWidth)...]), tail)
        // The paper's rate over the paper's widths (8 × 5,696 draws: σ ≈ 0.002).
        let paper = Backprop.dropoutMasks(shape: .paper(.valid134), seed: 23, stream: 1, first: 0, count: n)
        XCTAssertEqual(Double(paper.filter { $0 == 0 }.count) / Double(paper.count), 0.3, accuracy: 0.01)
        XCTAssertEqual(paper.first { $0 != 0 }!, 1 / 0.7, accuracy: 1e-6)
    }

    // MARK: helpers

    static func jaxStep(shape s: NetworkShape, params: [Tensor], images: [Float], labels: [Int], masks: [Float]) throws -> [String: Tensor] {
        let dir = PythonReference.tempDir("jax-step")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var input: [String: Tensor] = [:]
        for ((name, _), t) in zip(s.parameterShapes, params) { input[name] = t }
        let n = labels.count
        input["images"] = Tensor(shape: [n, s.input, s.input], data: images)
        input["labels"] = Tensor(shape: [n], data: labels.map(Float.init))
        input["masks"] = Tensor(shape: [n, s.dropoutWidth], data: masks)
        input["pads"] = Tensor(shape: [s.convs.count], data: s.convs.map { Float($0.pad) })
        input["relu"] = Tensor(shape: [s.linears.count], data: s.linears.map { $0.relu ? 1 : 0 })
        try Safetensors.save(input, path: dir + "/in.safetensors")
        try PythonReference.run("tools/reference/jax_train_step.py", [dir + "/in.safetensors", dir + "/out.safetensors"])
        return try Safetensors.load(path: dir + "/out.safetensors")
    }

    /// Tolerances: brainmap accumulates in float32 in another order than the float64 reference, so each gradient is
    /// compared relative to its tensor's largest entry (≤ 1e-3 of it). After one Adam step every update is
    /// ±lr·g/(|g|+ε·…) ≈ ±lr, so parameters are compared where the reference gradient is clearly non-zero
    /// (|g| > 1e-3·max, where float32 cannot flip its sign) to 1e-7 absolute (lr = 1e-4), and elsewhere to 2·lr.
    static func compare(shape s: NetworkShape, params: [Tensor], images: [Float], labels: [Int], masks: [Float],
                        reference ref: [String: Tensor], label: String) throws {
        let n = labels.count
        let bp = Backprop(shape: s, threads: 2)
        let r = images.withUnsafeBufferPointer { bp.run(parameters: params, images: $0, labels: labels, dropout: masks, gradients: true) }
        XCTAssertEqual(r.lossSum / Double(n), Double(ref["loss"]!.data[0]), accuracy: 1e-5, "\(label): loss")
        var updated = params
        var adam = Adam(sizes: params.map(\.count))
        adam.update(&updated, gradients: r.gradients, threads: 2)   // fc1 (4.7 M) split between two threads
        for (t, (name, _)) in s.parameterShapes.enumerated() {
            let g = ref["grad." + name]!.data, after = ref["adam." + name]!.data
            let scale = g.map(abs).max()!
            XCTAssertGreaterThan(scale, 0, "\(label): \(name) has no gradient in the reference")
            var worst: Float = 0
            for i in g.indices { worst = max(worst, abs(r.gradients[t][i] - g[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-3 * scale, "\(label): gradient of \(name): max error \(worst) vs scale \(scale)")
            var worstStep: Float = 0
            for i in g.indices {
                let err = abs(updated[t].data[i] - after[i])
                if abs(g[i]) > 1e-3 * scale { worstStep = max(worstStep, err) }
                else { XCTAssertLessThanOrEqual(err, 2e-4 + 1e-6, "\(label): \(name)[\(i)] after Adam") }
            }
            XCTAssertLessThanOrEqual(worstStep, 1e-7, "\(label): \(name) after one Adam step")
        }
    }
}
