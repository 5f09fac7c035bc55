import ArgumentParser
import Foundation

struct Brainmap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brainmap",
        abstract: "Map brain microarchitecture from chunked microscopy volumes with a CNN.",
        subcommands: [Info.self, ImportTiff.self, ExportTiff.self, PhantomCommand.self, Train.self, Predict.self, Evaluate.self, Cleanup.self, Factorize.self, SelectFactors.self, Cluster.self, Status.self, PyramidCommand.self, SlurmCommand.self, ReportCommand.self, Serve.self, Demo.self, Bench.self])
}

@main
enum Entry {
    static func main() async {
        BLASStartup.ensure(arguments: CommandLine.arguments)   // may re-execute this process once, before any work
        await Brainmap.main()
    }
}
