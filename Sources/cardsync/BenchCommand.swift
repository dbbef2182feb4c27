import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: ratios measured side by side in one run (absolute times on small machines are noisy).",
        subcommands: [BenchSyncCommand.self, BenchReportCommand.self, BenchReconcileCommand.self, BenchLoadCommand.self])
}
