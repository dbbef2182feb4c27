import CardBench
import ArgumentParser
import CardDatabase
import CardReports
import Foundation
import Logging
import LocalPostgres
import PostgresClient

/// `cardsync bench report`: times `report monthly` on a large generated history and on one ten
/// times smaller, in a private throwaway PostgreSQL cluster (the user's databases are never touched).
struct BenchReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Benchmark the monthly report: large history vs a tenth of it.",
        discussion: """
            Creates a private PostgreSQL cluster under /tmp, loads a consistent central database with \
            --applications applications over --years years (and another with a tenth of both), times \
            `report monthly` for the latest complete month (median of --runs runs after a warm-up), \
            and prints both times and their ratio. Targets: < 500 ms on the large one, ratio ≤ 1.5.

            Examples:
              cardsync bench report
              cardsync bench report --applications 100000 --runs 3
            """)

    @Option(help: "Applications in the large history.") var applications: Int = 2_000_000
    @Option(help: "Years of history in the large database.") var years: Double = 20
    @Option(help: "Number of agencies.") var agencies: Int = 16
    @Option(help: "Timed runs per database.") var runs: Int = 7
    @Option(help: ArgumentHelp("Time zone of the month.", valueName: "TZ")) var timezone: String = "Asia/Shanghai"
    @Flag(help: "Print one JSON document.") var json = false

    func validate() throws {
        guard applications >= 10 else { throw ValidationError("--applications must be at least 10") }
        guard (1...99).contains(agencies) else { throw ValidationError("--agencies must be between 1 and 99") }
        guard years > 0 else { throw ValidationError("--years must be positive") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        var options = ReportBenchmark.Options()
        options.applications = applications
        options.years = years
        options.agencies = agencies
        options.runs = runs
        options.timezone = timezone
        let directory = URL(fileURLWithPath: "/tmp/cardsync-bench-\(getpid())")
        let cluster = try LocalCluster(directory: directory, options: .init(
            durability: .fastUnsafeForTests, serverSettings: ["shared_buffers": "256MB", "max_wal_size": "4GB"]))
        defer { try? cluster.removeAll() }
        try cluster.start()
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"))
        let benchmark = ReportBenchmark(options: options)
        let result = try benchmark.run(database: { name in
            try admin.executeScript("CREATE DATABASE \(try admin.escapeIdentifier(name))")
            let connection = try Connection(conninfo: cluster.connectionURI(database: name))
            _ = try Migrator(connection: connection, logger: Logger(label: "cardsync.migrate")).migrate()
            return connection
        }, progress: { line in
            FileHandle.standardError.write(Data(("bench report: " + line + "\n").utf8))
        })
        print(json ? result.json : result.text, terminator: "")
    }
}
