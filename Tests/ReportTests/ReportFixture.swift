import Foundation
import NeuralNet
import TestSupport
import XCTest

/// A small real run with every step, made once per test process through the command line (the contract the report
/// reads): a 2×200×260 phantom, random weights, predict at stride 2 in 48-pixel blocks (partial edge chunks), labels
/// painted from the phantom's areas (random weights predict one class), evaluate, cleanup, evaluate labels_clean, PCA, NMF, clusters with ROI distributions and matching, a second clustering (`--name clusters_pcs`, PCs 1–3), select-factors;
/// plus the model's sidecar JSON in train's format.
enum ReportFixture {
    struct Run { let dir: String; let run: String; let phantom: String }
    nonisolated(unsafe) private static var made: Run?
    /// Removed when the test process exits (the run is shared by the test classes, so no one class's tearDown owns it).
    nonisolated(unsafe) private static var scratch: String?
    private static let lock = NSLock()

    static func run() throws -> Run {
        lock.lock(); defer { lock.unlock() }
        if let made { return made }
        let dir = PythonReference.tempDir("report-fixture")
        scratch = dir
        atexit { if let d = ReportFixture.scratch { try? FileManager.default.removeItem(atPath: d) } }
        let ph = dir + "/ph.zarr", run = dir + "/run.zarr", model = dir + "/w.safetensors"
        try cli(["phantom", ph, "--shape", "2,200,260", "--seed", "3", "--chunks", "1,64,64"], dir)
        try Safetensors.save(AreaClassifier.randomParameters(seed: 7), path: model)
        let epochs = (1...4).map { e -> [String: Any] in
            ["epoch": e, "train_loss": 1.8 / Double(e), "train_accuracy": 0.2 * Double(e), "val_loss": 1.9 / Double(e), "val_accuracy": 0.18 * Double(e), "seconds": 2.5]
        }
        let sidecar: [String: Any] = ["format": "brainmap-model/1", "best_epoch": 4, "best_val_accuracy": 0.72, "epochs": epochs,
                                      "parameters": ["epochs": 4, "lr": 1e-4], "data": ["volume": ph + "/raw", "train_slices": [0]]]
        try JSONSerialization.data(withJSONObject: sidecar).write(to: URL(fileURLWithPath: dir + "/w.json"))
        try cli(["predict", "--volume", ph + "/raw", "--model", model, "--out", run, "--stride", "2", "--tile", "32", "--block", "48", "--quiet"], dir)
        try PythonReference.run("tools/reference/paint_labels.py", [run, ph + "/areas"])
        try cli(["evaluate", run, "--annotations", ph + "/areas"], dir)
        try cli(["cleanup", run, "--quiet"], dir)
        try cli(["evaluate", run, "--annotations", ph + "/areas", "--array", "labels_clean"], dir)
        try cli(["factorize", run, "--method", "pca", "--k", "4", "--quiet"], dir)
        try cli(["factorize", run, "--method", "nmf", "--k", "3", "--sample", "4000", "--quiet"], dir)
        try cli(["cluster", run, "--k", "3", "--rois", ph + "/layers", "--match", "0,1", "--sample", "4000", "--quiet"], dir)
        try cli(["cluster", run, "--on", "pca", "--components", "1:3", "--k", "4", "--name", "clusters_pcs", "--sample", "4000", "--quiet"], dir)
        try cli(["select-factors", run, "--rois", ph + "/layers"], dir)
        made = Run(dir: dir, run: run, phantom: ph)
        return made!
    }

    @discardableResult
    static func cli(_ args: [String], _ dir: String) throws -> BrainmapCLI.Result {
        let r = try BrainmapCLI.run(args, logDir: dir, tag: args[0])
        guard r.status == 0 else {
            throw NSError(domain: "ReportFixture", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey:
                "brainmap \(args.joined(separator: " ")) failed (\(r.status)):\n\(r.stdout)\n\(r.stderr)"])
        }
        return r
    }

    /// Width and height from a PNG's IHDR.
    static func pngSize(_ path: String) throws -> (Int, Int) {
        let d = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard d.count > 24, d[1] == 0x50, d[2] == 0x4E, d[3] == 0x47 else { throw NSError(domain: "png", code: 1) }
        func be(_ o: Int) -> Int { d[o..<(o + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }
}
