import ArgumentParser
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The `cardsync` command: agency queues, sync with the bureau's central database, conflicts,
/// reports. See ../shared/spec/cli.md for the contract.
@main
struct Cardsync: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cardsync",
        abstract: "Sync agency queues of children's social security card applications with the bureau's central database.",
        discussion: """
            Agencies keep local JSON queues; cardsync pushes their events to the central PostgreSQL \
            database exactly once, pulls the bureau's decisions back, records conflicts, and reports. \
            Without --database or CARDSYNC_DATABASE_URL it uses a private embedded PostgreSQL cluster \
            under CARDSYNC_HOME; `--database demo` (or CARDSYNC_DATABASE_URL=demo) is the database \
            `cardsync demo` made.

            Examples:
              cardsync demo
              export CARDSYNC_DATABASE_URL=demo
              cardsync queue status /srv/queues/CS-FR-001 --lang zh
              cardsync sync /srv/queues/* --jobs 4
              cardsync conflicts list --format csv > conflicts.csv
            """,
        version: version,
        subcommands: [
            DbCommand.self, AgencyCommand.self, QueueCommand.self, SyncCommand.self, MergeCommand.self,
            BureauCommand.self, ReportCommand.self, GenerateCommand.self, DemoCommand.self, BenchCommand.self,
            ConflictsCommand.self,
            ReconcileCommand.self,
            StatusCommand.self,

        ]
    )

    static func main() {
        // Few malloc arenas: sync's worker threads otherwise each keep freed batch memory.
        _ = glibcMallopt(glibcArenaMax, 2)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            let level = ProcessInfo.processInfo.environment["CARDSYNC_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as UsageFailure {
            failure.exit()
        } catch {
            exit(withError: error)
        }
    }
}

/// glibc's `mallopt` (malloc.h is not part of the Glibc module); M_ARENA_MAX is -8.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcArenaMax: Int32 = -8
