import Foundation
import NeuralNet

/// `bench cnn --profile`: where dense S=1 (FFT fc1, the default tiles) and exact spend their time, stage by stage,
/// with the FLOPs each stage executes and its GFLOP/s per core against one-thread sgemm measured in the same run.
/// Profiled and plain runs alternate over `rounds` rounds, so the timers' own cost shows as the px/s difference.
struct EngineProfileBench {
    let model: AreaClassifier
    let plane: [UInt8]
    let height: Int, width: Int
    let threads: Int, seconds: Double, rounds: Int

    func run() throws {
        let sgemm1 = measureSgemm(m: 1024, n: 2048, k: 4608, threads: 1, seconds: seconds)
        let sgemmN = measureSgemm(m: 1024, n: 2048, k: 4608, threads: threads, seconds: seconds)
        print(String(format: "OpenBLAS core %@; sgemm 1024×4608 · 4608×2048: %.1f GFLOP/s on 1 thread, %.1f on %d threads",
                     BLASCore.record, sgemm1, sgemmN, threads))
        let dense = DenseEvaluator(model: model, fc1: .fft)
        let rows = 0..<176, cols = 0..<704   // four 176² tiles, two per worker at 2 threads
        let exact = PatchEvaluator(model: model, threads: threads)
        let pixels = (0..<64).map { (100 + ($0 / 8) * 37, 200 + ($0 % 8) * 61) }
        let denseProfile = EngineProfile(), exactProfile = EngineProfile()
        var denseRates: ([Double], [Double]) = ([], []), exactRates: ([Double], [Double]) = ([], [])
        var densePixels = 0, exactPatches = 0
        for _ in 0..<rounds {
            for profiled in [false, true] {
                let p = profiled ? denseProfile : nil
                let r = try throughput(seconds: seconds) {
                    _ = try dense.evaluate(plane: plane, height: height, width: width, rows: rows, cols: cols, stride: 1, tile: 176,
                                           parallelTiles: threads, blasThreads: threads, profile: p)
                    if profiled { densePixels += rows.count * cols.count }
                    return rows.count * cols.count
                }
                if profiled { denseRates.1.append(r) } else { denseRates.0.append(r) }
            }
            for profiled in [false, true] {
                let p = profiled ? exactProfile : nil
                let r = throughput(seconds: seconds) {
                    _ = exact.evaluate(plane: plane, height: height, width: width, pixels: pixels, profile: p)
                    if profiled { exactPatches += pixels.count }
                    return pixels.count
                }
                if profiled { exactRates.1.append(r) } else { exactRates.0.append(r) }
            }
        }
        Self.table("dense S=1, fc1 FFT, 176-px tiles, \(threads) tiles × BLAS 1", denseProfile, units: densePixels, unit: "px",
                   rates: denseRates, sgemm1: sgemm1)
        Self.table("exact (padded 128), batch 64, \(threads) patch workers, then fc1–3 on BLAS × \(threads)", exactProfile,
                   units: exactPatches, unit: "patch", rates: exactRates, sgemm1: sgemm1)
    }

    /// One profile as a table: per stage its share, thread-time and MFLOP per unit (px or patch), GFLOP/s per core and
    /// that against 1-thread sgemm; `rates`: the plain and profiled rounds' units/s.
    static func table(_ title: String, _ p: EngineProfile, units: Int, unit: String, rates: ([Double], [Double]), sgemm1: Double) {
        let total = p.stages.reduce(0) { $0 + $1.seconds }
        let flops = p.stages.reduce(0) { $0 + $1.flops }
        func med(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        print("\n" + title)
        print(String(format: "  %@/s plain %@ | profiled %@ (rounds; profiled/plain median %.3f)",
                     unit, rates.0.map { String(format: "%.0f", $0) }.joined(separator: " / "),
                     rates.1.map { String(format: "%.0f", $0) }.joined(separator: " / "), med(rates.1) / med(rates.0)))
        let perUnit = unit == "px" ? ("thread-µs/px", 1e6, "MFLOP/px", 1e6) : ("thread-ms/patch", 1e3, "MFLOP/patch", 1e6)
        print("  stage                                       time %  " + pad(perUnit.0, 15) + pad(perUnit.2, 13)
              + "  GFLOP/s/core  % of sgemm(1 thread)")
        for s in p.stages {
            let gf = s.seconds > 0 ? s.flops / s.seconds / 1e9 : 0
            print("  " + "\(s.layer.name) \(s.backward ? "backward " : "")\(s.kind.name)".padding(toLength: 42, withPad: " ", startingAt: 0)
                  + pad(String(format: "%.1f", 100 * s.seconds / total), 8)
                  + pad(String(format: "%.3f", s.seconds / Double(units) * perUnit.1), 17)
                  + pad(s.flops > 0 ? String(format: "%.3f", s.flops / Double(units) / perUnit.3) : "", 13)
                  + pad(s.flops > 0 ? String(format: "%.1f", gf) : "", 14)
                  + pad(s.flops > 0 ? String(format: "%.0f%%", 100 * gf / sgemm1) : "", 22))
        }
        print("  " + "total".padding(toLength: 42, withPad: " ", startingAt: 0) + pad("100.0", 8)
              + pad(String(format: "%.3f", total / Double(units) * perUnit.1), 17)
              + pad(String(format: "%.3f", flops / Double(units) / perUnit.3), 13)
              + pad(String(format: "%.1f", flops / total / 1e9), 14) + pad(String(format: "%.0f%%", 100 * flops / total / 1e9 / sgemm1), 22))
    }
}
