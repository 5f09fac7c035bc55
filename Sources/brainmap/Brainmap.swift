import ArgumentParser

@main
struct Brainmap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brainmap",
        abstract: "Map brain microarchitecture from chunked microscopy volumes with a CNN.",
        subcommands: [Info.self, ImportTiff.self, ExportTiff.self, PhantomCommand.self, Train.self, Predict.self, Evaluate.self, Cleanup.self, Factorize.self, SelectFactors.self, Cluster.self, Status.self, ReportCommand.self, Serve.self, Demo.self, Bench.self])
}
