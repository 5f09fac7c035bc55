import ArgumentParser
import Foundation
import Run

struct PyramidCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pyramid",
        abstract: "Builds the multiscale pyramids of a run's arrays: for runs an older brainmap wrote, or pyramids left unfinished.",
        discussion: """
        predict, cleanup, factorize and cluster build the pyramids of what they write as they write it; this command is for
        runs made before they did (each array is converted in place to an OME-Zarr image group: level 0 moves to
        RUN/NAME/0, its chunks untouched) and fills any pyramid chunk that is missing. Levels halve y and x until a level
        fits in one chunk: the mode of each 2×2 window for label maps (a tie goes to the smaller id), the mean of its
        non-NaN values for float arrays. Refused while a step is writing the array.
        """)
    @Argument(help: "The run directory.") var run: String
    @Option(help: "Comma-separated arrays (default: every array of the run).") var arrays: String?

    func run() async throws {
        let r = try Run.open(run)
        let names = arrays.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let names, names.isEmpty || names.contains("") {
            throw ValidationError("--arrays '\(arrays!)' names no array; give names such as labels,entropy, or leave it out for every array")
        }
        let bars = PhaseBars(quiet: false)
        let levels = try await r.buildPyramids(names) { name, done, total in bars.update("\(name): slices", done, total) }
        bars.finish()
        for (name, n) in levels.sorted(by: { $0.key < $1.key }) { print("\(run)/\(name): \(n) level\(n == 1 ? "" : "s")") }
    }
}
