import ArgumentParser
import Foundation
import Pipeline
import VolumeStore

struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy, per-class precision/recall/F1 and confusion matrix of a run against annotations.",
        discussion: """
        Compares RUN.zarr/labels (or --array, e.g. labels_clean) with the annotation volume at every annotated pixel the
        run predicted (at stride S: pixels (S·i, S·j)), chunk by chunk. Annotated pixels the run did not predict (outside
        its tissue mask, slices not run) are counted separately. Prints a table and writes RUN.zarr/evaluation-ARRAY.json.
        """)

    @Argument(help: "The run directory predict wrote.") var run: String
    @Option(help: "The annotation volume (integer labels; same z, y, x extent as the predicted volume).") var annotations: String
    @Option(parsing: .unconditional, help: "Slices: 'all', '3', '0:8' or '1,5,9'.") var slices = "all"
    @Option(help: "Annotation ids → classes: a preset (phantom, prasad2020) or a JSON file.") var labelMap = "phantom"
    @Option(help: "The run's label array to evaluate.") var array = "labels"
    @Option(help: "Evaluate the run's anomaly map instead: a mask volume (nonzero = anomalous, e.g. phantom.zarr/anomaly); prints the ROC AUC of anomalous vs normal tissue (--annotations says where tissue is) and writes RUN.zarr/evaluation-anomaly.json.") var anomalyTruth: String?
    @OptionGroup var sourceFlags: SourceFlags

    func run() async throws {
        let zs = slices == "all" ? nil : try parseSlices(slices)
        if let anomalyTruth {
            guard array == "labels" else {
                throw ValidationError("--array \(array) does not apply with --anomaly-truth, which scores the run's anomaly map; evaluate \(array) in a separate command")
            }
            let e = try await AnomalyEvaluation.evaluate(run: run, truth: anomalyTruth, annotations: annotations, slices: zs,
                                                         map: try LabelMap.load(labelMap), context: sourceFlags.context())
            say(e.line)
            say("written: \(try AnomalyEvaluation.save(e, run: run))")
            return
        }
        let e = try await Evaluator.evaluate(run: run, array: array, annotations: annotations, slices: zs,
                                             map: try LabelMap.load(labelMap), context: sourceFlags.context())
        say(e.table)
        say("written: \(try Evaluator.save(e, run: run))")
    }
}
