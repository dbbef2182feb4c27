import ArgumentParser
import Foundation
import Logging

/// The `cardsync` command: agency queues, sync with the bureau's central database, conflicts,
/// reports. See ../shared/spec/cli.md for the contract.
@main
struct Cardsync: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cardsync",
        abstract: "Sync agency queues of children's social security card applications with the bureau's central database.",
        discussion: """
            Agencies keep local JSON queues; cardsync pushes their events to the central PostgreSQL
            database exactly once, pulls the bureau's decisions back, records conflicts, and reports.
            Without --database or CARDSYNC_DATABASE_URL it uses a private embedded PostgreSQL cluster
            under CARDSYNC_HOME.
            """,
        version: version,
        subcommands: [
            DbCommand.self, AgencyCommand.self, QueueCommand.self, SyncCommand.self,
            BureauCommand.self, ReportCommand.self, GenerateCommand.self, DemoCommand.self, BenchCommand.self,
            ConflictsCommand.self,
            ReconcileCommand.self,

        ]
    )

    static func main() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            let level = ProcessInfo.processInfo.environment["CARDSYNC_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
