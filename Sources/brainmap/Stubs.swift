import ArgumentParser
struct Demo: AsyncParsableCommand { func run() async throws {} }
struct Bench: AsyncParsableCommand { func run() async throws {} }
