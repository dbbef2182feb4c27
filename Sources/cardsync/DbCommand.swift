import ArgumentParser
import CardCore
import CardDatabase
import CardSync
import Foundation
import LocalPostgres
import PostgresClient

struct DbCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the central database: schema migrations, verification, the embedded cluster.",
        subcommands: [Migrate.self, Status.self, Verify.self, Start.self, Stop.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the schema migrations this cardsync ships (idempotent).")
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let connection = try db.selection.connect(migrate: false)
            let report = try Migrator(connection: connection).migrate()
            if report.changedNothing {
                print("Nothing to do: the schema is already at version \(report.currentVersion).")
            } else {
                for version in report.applied {
                    let name = Migration.all.first { $0.version == version }?.name ?? ""
                    print("Applied migration \(version) (\(name)).")
                }
                print("The schema is now at version \(report.currentVersion).")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say which database is in use, where, whether it runs, and its schema version. Starts nothing.")
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let selection = db.selection
            print("Database: \(selection.summary)")
            var uri: String?
            switch selection.source {
            case .embedded:
                let cluster = try selection.embeddedCluster()
                let status = cluster.status
                print("Cluster directory: \(cluster.directory.path)")
                print("Data directory: \(status.dataDirectory.path)\(status.isInitialized ? "" : " (not created yet: created on first use)")")
                print("Socket directory: \(status.socketDirectory.path) (Unix socket only, no TCP)")
                print("Server: \(status.isRunning ? "running (pid \(status.pid.map(String.init) ?? "?"))" : "not running")")
                if status.isRunning {
                    let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"))
                    let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1",
                                                 [.text(DatabaseSelection.embeddedDatabaseName)])
                    if exists.isEmpty {
                        print("Database \(DatabaseSelection.embeddedDatabaseName): not created yet (created and migrated on first use)")
                    } else {
                        uri = cluster.connectionURI(database: DatabaseSelection.embeddedDatabaseName)
                    }
                }
            case .flag, .environment:
                uri = nil
            }
            // Only look inside a server that is already there: status must not start anything.
            guard selection.source != .embedded || uri != nil else { return }
            do {
                let connection = selection.source == .embedded
                    ? try Connection(conninfo: uri!)
                    : try selection.connect(migrate: false)
                print("Connected to: \(connection.target)")
                let entries = try Migrator(connection: connection).status()
                for entry in entries {
                    let when = entry.appliedAt.map { "applied \(Timestamp(microseconds: $0.microsecondsSince1970).rfc3339)" } ?? "not applied"
                    print("Migration \(entry.migration.version) (\(entry.migration.name)): \(when)")
                }
            } catch {
                print("Cannot connect: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild the projection from the ledger in a scratch schema and compare it with the live one.",
            discussion: "Exits 1 if any difference is found; every difference is listed.")
        @OptionGroup var db: DatabaseOptions
        @Flag(name: .long, help: "Print the result as JSON.") var json = false

        func run() throws {
            let connection = try db.connect()
            let report = try ProjectionVerifier(connection: connection).verify()
            if json {
                print(report.json)
            } else {
                print(report.text)
            }
            if !report.isClean { throw ExitCode(1) }
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create (if needed) and start the embedded cluster.")
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let selection = db.selection
            guard selection.source == .embedded else {
                throw CommandFailure("db start manages the embedded cluster, but \(selection.summary) is selected",
                                     hint: "unset CARDSYNC_DATABASE_URL and drop --database to use the embedded cluster")
            }
            _ = try db.connect()
            let cluster = try selection.embeddedCluster()
            print("The embedded cluster runs in \(cluster.directory.path) (socket in \(cluster.socketDirectory.path)).")
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded cluster.")
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let selection = db.selection
            guard selection.source == .embedded else {
                throw CommandFailure("db stop manages the embedded cluster, but \(selection.summary) is selected")
            }
            let cluster = try selection.embeddedCluster()
            if !cluster.isRunning {
                print("The embedded cluster in \(cluster.directory.path) is not running.")
                return
            }
            try cluster.stop()
            print("Stopped the embedded cluster in \(cluster.directory.path).")
        }
    }
}
