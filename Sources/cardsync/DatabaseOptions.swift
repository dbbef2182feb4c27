import ArgumentParser
import Foundation
import CardDatabase
import CardSync
import LocalPostgres
import Logging
import PostgresClient

/// `--database URL`, shared by every command that touches the central database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "libpq connection URI or key=value conninfo of the central database.",
        discussion: "Default: CARDSYNC_DATABASE_URL, else the embedded cluster under CARDSYNC_HOME.",
        valueName: "URL"))
    var database: String?

    /// The selected database; `demo` (as `--database` or `CARDSYNC_DATABASE_URL`) stands for the
    /// demo's database in the embedded cluster, as a libpq URI over its socket.
    var selection: DatabaseSelection {
        let environment = ProcessInfo.processInfo.environment
        guard let alias = demoAlias(environment: environment) else { return DatabaseSelection(flag: database, environment: environment) }
        // Locating the cluster fails only without PostgreSQL installed; connect() says so first.
        let uri = (try? Self.demoCluster(environment: environment).connectionURI(database: DemoCommand.databaseName)) ?? Self.demoAlias
        switch alias {
        case .flag:
            return DatabaseSelection(flag: uri, environment: environment)
        default:
            var replaced = environment
            replaced["CARDSYNC_DATABASE_URL"] = uri
            return DatabaseSelection(flag: nil, environment: replaced)
        }
    }

    /// The name that stands for the demo's database: `--database demo` or
    /// `CARDSYNC_DATABASE_URL=demo`. libpq reads no conninfo without `=` or a `postgresql://`
    /// prefix, so the word cannot be mistaken for a real connection string.
    static let demoAlias = "demo"

    /// Where `demo` was given (`.flag` or `.environment`), or nil when it was not.
    func demoAlias(environment: [String: String] = ProcessInfo.processInfo.environment) -> DatabaseSelection.Source? {
        if let database, !database.isEmpty { return database == Self.demoAlias ? .flag : nil }
        return environment["CARDSYNC_DATABASE_URL"] == Self.demoAlias ? .environment : nil
    }

    /// The embedded cluster under CARDSYNC_HOME, the one `cardsync demo` creates its database in.
    static func demoCluster(environment: [String: String]) throws -> LocalCluster {
        try DatabaseSelection(flag: nil, environment: environment.filter { $0.key != "CARDSYNC_DATABASE_URL" }).embeddedCluster()
    }

    /// Which database is in use, for messages: the demo alias by its own name.
    var summary: String {
        guard let alias = demoAlias() else { return selection.summary }
        let home = DatabaseSelection.home(environment: ProcessInfo.processInfo.environment)
        let given = alias == .flag ? "--database demo" : "CARDSYNC_DATABASE_URL=demo"
        return "\(given): database \(DemoCommand.databaseName) of the embedded cluster in \(home.appendingPathComponent("postgres").path)"
    }

    /// For `demo`: starts the embedded cluster (a `db stop` may have stopped it) and checks that
    /// `cardsync demo` created its database there, so that a clerk who typed the alias before
    /// running the demo is told to run it rather than shown libpq's "database does not exist".
    func prepareDemoDatabase(logger: Logger) throws {
        guard let alias = demoAlias() else { return }
        let given = alias == .flag ? "--database demo" : "CARDSYNC_DATABASE_URL=demo"
        let cluster: LocalCluster
        do {
            cluster = try Self.demoCluster(environment: ProcessInfo.processInfo.environment)
            try cluster.start()
        } catch {
            throw CommandFailure("\(given) names the demo database in the embedded cluster, which cannot be started: \(error)",
                                 hint: "check that PostgreSQL is installed (apt-get install postgresql) and CARDSYNC_HOME is writable")
        }
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"), logger: logger)
        let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(DemoCommand.databaseName)])
        guard !exists.isEmpty else {
            throw CommandFailure("\(given) names the demo database, but there is none in the embedded cluster in \(cluster.directory.path)",
                                 hint: "run cardsync demo first (it creates it), or " + (alias == .flag
                                    ? "leave out --database demo to use the default database"
                                    : "run unset CARDSYNC_DATABASE_URL to use the default database"))
        }
    }

    /// Connects (starting and migrating the embedded default when it is the one in use).
    func connect(logger: Logger = Logger(label: "cardsync")) throws -> Connection {
        try prepareDemoDatabase(logger: logger)
        let selection = self.selection
        let summary = self.summary
        do {
            return try selection.connect(logger: logger)
        } catch let failure as Migrator.Failure {
            throw CommandFailure("the schema of the central database (\(summary)) does not match this cardsync: \(failure)")
        } catch {
            let unreadable = selection.summary.contains(ConnectionTarget.unparsableConninfoPlaceholder)
            throw CommandFailure("cannot use the central database (\(summary)): \(error)",
                                 hint: unreadable ? Self.unreadableHint(selection.source) : Self.hint(for: "\(error)", source: selection.source),
                                 cause: error)
        }
    }
}

extension DatabaseOptions {
    /// A value libpq cannot even parse: no server was tried, so "check that it runs" would mislead.
    static func unreadableHint(_ source: DatabaseSelection.Source) -> String {
        let name = source == .environment ? "CARDSYNC_DATABASE_URL" : "--database"
        return "\(name) is not a connection string libpq can read: use a URI such as "
            + "postgresql://USER@HOST:5432/cardsync?sslmode=verify-full or key=value pairs such as 'host=HOST dbname=cardsync user=USER' "
            + "(quote values with spaces in single quotes); the one word it takes is \(demoAlias), for the database of cardsync demo"
    }

    /// What to do about a failed connection, from libpq's reason.
    static func hint(for message: String, source: DatabaseSelection.Source) -> String {
        if message.contains("root certificate file") || message.contains("certificate verify failed") {
            return "the server's certificate could not be verified: give the bureau's CA certificate with sslrootcert=PATH in the URL (for the embedded cluster: tls/ca.crt under CARDSYNC_HOME/postgres)"
        }
        if message.contains("does not match host name") {
            return "the server's certificate is for another host name: use the name the bureau's certificate carries in the URL's host"
        }
        if message.contains("password authentication failed") {
            return "the role or password is wrong, or the password was rotated: ask the bureau for new credentials (cardsync agency credentials CODE)"
        }
        if source == .embedded {
            return "check that PostgreSQL is installed (apt-get install postgresql) and CARDSYNC_HOME is writable"
        }
        return "check that the server runs and the URL, user and password are right"
    }

    /// Connects for a command that reads the projection (reports, conflicts): first repairs a
    /// projection left behind the ledger by a sync that stopped between its two commits, so that
    /// no figure is read from a stale projection.
    ///
    /// On a hot standby (`pg_is_in_recovery()`) nothing may be written, and the repair would
    /// write: there the watermark is only read, and a stale projection is refused rather than
    /// read, since only the primary can rebuild it (the standby follows once it has replayed).
    func connectForReading(logger: Logger = Logger(label: "cardsync")) throws -> Connection {
        let connection = try connect(logger: logger)
        if try connection.query("SELECT pg_is_in_recovery()")[0].decode(Bool.self, at: 0) {
            // A sync between its two commits on the primary also shows here for a moment:
            // running the command again passes.
            if try !ProjectionWatermark.read(on: connection).isCurrent {
                throw CommandFailure("the projection of the central database (\(summary)) is behind its ledger, and this server is a read-only standby, which cannot rebuild it",
                                     hint: "the standby's primary must repair it: run this command (or sync any agency) against the primary, then again here once the standby has replayed")
            }
            return connection
        }
        do {
            try ProjectionWatermark.repairIfBehind(on: connection, logger: logger)
        } catch {
            throw CommandFailure("the projection of the central database (\(summary)) is behind its ledger and could not be rebuilt: \(error)",
                                 hint: "run cardsync db verify, then sync any agency to rebuild it")
        }
        return connection
    }
}

/// A failure the user can act on: printed as `Error: message` plus a hint, exit status 1.
/// A bad value on the command line that could only be judged after parsing (by the server, say):
/// reported like the argument parser's own usage errors, with the subcommand's usage, exit 64.
struct UsageFailure: Error {
    let command: any ParsableCommand.Type
    let message: String

    init(_ command: any ParsableCommand.Type, _ message: String) {
        self.command = command
        self.message = message
    }

    /// Prints the message and `command`'s usage (its full path from `cardsync`) the way
    /// ArgumentParser prints its own usage errors, and exits 64.
    func exit() -> Never {
        let usage = Cardsync.usageString(for: command)
        // The usage starts with the command's path: "cardsync report monthly --month <YYYY-MM> …".
        let path = usage.split(separator: " ").prefix { !$0.hasPrefix("<") && !$0.hasPrefix("[") && !$0.hasPrefix("-") }
        FileHandle.standardError.write(Data("""
            Error: \(message)
            Usage: \(usage)
              See '\(path.joined(separator: " ")) --help' for more information.

            """.utf8))
        Foundation.exit(ExitCode.validationFailure.rawValue)
    }
}

struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var hint: String?
    /// The error behind the message, for a caller that decides whether to try again.
    var cause: Error?

    init(_ message: String, hint: String? = nil, cause: Error? = nil) {
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    /// The cause is a broken or refused connection that a later attempt may not meet.
    var isRetryable: Bool {
        switch cause {
        case let error as PostgresError: error.isRetryable
        case let error as SyncError: error.isRetryable
        default: false
        }
    }

    var description: String { hint.map { "\(message)\nWhat to do: \($0)" } ?? message }
}
