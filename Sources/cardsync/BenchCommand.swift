import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: ratios measured side by side in one run (absolute times on small machines are noisy).",
        discussion: """
            Examples:
              cardsync bench sync --events 200000
              cardsync bench report
              cardsync bench load --agencies 50
            """,
        subcommands: [BenchSyncCommand.self, BenchReportCommand.self, BenchReconcileCommand.self, BenchLoadCommand.self])
}
