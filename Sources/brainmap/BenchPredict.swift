import ArgumentParser
import Foundation
import NeuralNet
import Phantom
import Pipeline
import VolumeStore

struct BenchPredict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "predict",
        abstract: "predict's px/s on a full-size phantom slice against the engine alone on the same pixels, interleaved rounds.",
        discussion: """
        Each round runs, in turn: the engine alone (DenseEvaluator on the slice in memory, same tiles and threads),
        predict from the local store, and (with --remote) predict from the same store over HTTP. Reported: the median
        of the rounds, the pipeline's overhead against the engine, the network's stall fraction, and remote/local.
        tools/bench/predict_bench.sh serves the store through nginx and a proxy adding 100 ms to every response.
        """)

    @Option(help: "Rounds (median reported).") var rounds = 3
    @Option(help: "Output stride.") var stride = 2
    @Option(help: "Scratch directory (default: a temporary one); the phantom slice is kept there between runs.") var scratch: String?
    @Option(help: "The scratch phantom's raw served over HTTP, e.g. http://127.0.0.1:8081/bench.zarr/raw.") var remote: String?
    @Option(help: "Memory budget for predict.") var memoryBudget = "3GiB"
    @Option(help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Instead: predict's wall time with pyramids against without (levels left unbuilt), interleaved rounds.") var pyramids = false
    @OptionGroup var blas: BLASFlags

    func run() async throws {
        let dir = scratch ?? FileManager.default.temporaryDirectory.appendingPathComponent("brainmap-bench-predict").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let raw = dir + "/bench.zarr/raw"
        if !FileManager.default.fileExists(atPath: raw + "/0/.zarray") {
            say("writing a full-size phantom slice (1×1420×5805) to \(dir)/bench.zarr …")
            try await PhantomWriter.write(to: dir + "/bench.zarr", shape: [1, 1420, 5805], seed: 1, pyramidLevels: 1)
        }
        let weights = dir + "/w.safetensors"
        try Safetensors.save(AreaClassifier.randomParameters(seed: 1), path: weights)
        let src = try await VolumeSource.open(raw)
        let H = src.shape[1], W = src.shape[2]
        let plane = try await src.read(Box([0..<1, 0..<H, 0..<W]))
        let dense = DenseEvaluator(model: try AreaClassifier(contentsOf: weights))
        let pixels = ((H + stride - 1) / stride) * ((W + stride - 1) / stride)
        say("\(pixels) output pixels per run (1420×5805 at stride \(stride)), \(threads) threads, \(rounds) rounds interleaved")

        if pyramids {
            var with: [Double] = [], without: [Double] = []
            for r in 0..<rounds {
                // Alternating which goes first, so neither always runs on a warmer machine.
                for first in [r % 2 == 0, r % 2 != 0] {
                    let s = try await predict(raw, dir + "/pyr-\(r).zarr", weights, pyramids: first)
                    if first { with.append(s.wall) } else { without.append(s.wall) }
                }
                say(String(format: "round %d: predict with pyramids %.2f s, without %.2f s", r + 1, with.last!, without.last!))
            }
            say(String(format: "median: with pyramids %.2f s, without %.2f s: overhead %.2f%% (target ≤ 3%%)",
                         median(with), median(without), 100 * (median(with) / median(without) - 1)))
            return
        }
        var engine: [Double] = [], local: [Double] = [], http: [Double] = [], stall: [Double] = [], stallHTTP: [Double] = []
        for r in 0..<rounds {
            let t0 = Date()
            _ = try dense.evaluate(plane: plane, height: H, width: W, rows: 0..<H, cols: 0..<W, stride: stride,
                                   parallelTiles: threads, blasThreads: threads)
            engine.append(Double(pixels) / Date().timeIntervalSince(t0))
            let l = try await predict(raw, dir + "/local-\(r).zarr", weights)
            local.append(l.pixelsPerSecond); stall.append(l.stallFraction)
            var line = String(format: "round %d: engine %.0f px/s, predict local %.0f px/s (stall %.1f%%)", r + 1, engine.last!, l.pixelsPerSecond, 100 * l.stallFraction)
            if let remote {
                let h = try await predict(remote, dir + "/http-\(r).zarr", weights)
                http.append(h.pixelsPerSecond); stallHTTP.append(h.stallFraction)
                line += String(format: ", predict HTTP %.0f px/s (stall %.1f%%, %@)", h.pixelsPerSecond, 100 * h.stallFraction, h.remote)
            }
            say(line)
        }
        let e = median(engine), l = median(local)
        say(String(format: "median: engine %.0f px/s, predict %.0f px/s: pipeline overhead %.1f%% (target ≤ 5%%); network stall %.1f%% (target < 2%%)",
                     e, l, 100 * (1 - l / e), 100 * median(stall)))
        if !http.isEmpty {
            say(String(format: "median: predict over HTTP %.0f px/s = %.0f%% of local (target ≥ 90%%), stall %.1f%%",
                         median(http), 100 * median(http) / l, 100 * median(stallHTTP)))
        }
    }

    func predict(_ source: String, _ out: String, _ weights: String, pyramids: Bool = true) async throws -> PredictSummary {
        var o = PredictOptions(source: source, model: weights, out: out)
        o.stride = stride; o.mask = .none; o.threads = threads; o.restart = true; o.pyramids = pyramids
        o.memoryBudget = try parseBytes(memoryBudget, name: "--memory-budget")
        defer { try? FileManager.default.removeItem(atPath: out) }
        return try await PredictJob(options: o, context: SourceOptions()).run()
    }
}

/// A line on stdout at once (print is block-buffered into a pipe; rounds take minutes).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
