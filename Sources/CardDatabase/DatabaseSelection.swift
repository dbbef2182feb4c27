import Foundation
import LocalPostgres
import Logging
import PostgresClient
#if canImport(Glibc)
import Glibc
#endif

/// Which central database a command uses (../shared/spec/cli.md, "Which database"):
/// `--database URL`, else `CARDSYNC_DATABASE_URL`, else the embedded default, a private
/// cluster under `CARDSYNC_HOME` that is created, started and migrated on first use.
public struct DatabaseSelection: Sendable {
    public enum Source: String, Sendable {
        case flag = "--database"
        case environment = "CARDSYNC_DATABASE_URL"
        case embedded = "embedded default"
    }

    public let source: Source
    /// The conninfo given by flag or environment (never printed: it may hold a password).
    let conninfo: String?
    /// The embedded cluster's home (`CARDSYNC_HOME`), for `.embedded`.
    public let home: URL

    /// The database the embedded cluster holds cardsync's data in.
    public static let embeddedDatabaseName = "cardsync"

    public init(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        home = Self.home(environment: environment)
        if let flag, !flag.isEmpty {
            source = .flag
            conninfo = flag
        } else if let url = environment["CARDSYNC_DATABASE_URL"], !url.isEmpty {
            source = .environment
            conninfo = url
        } else {
            source = .embedded
            conninfo = nil
        }
    }

    /// `CARDSYNC_HOME`, or a per-user data directory: `$XDG_DATA_HOME/cardsync`,
    /// `~/.local/share/cardsync`; for root `/var/lib/cardsync`, because the server runs as the
    /// `postgres` user, which cannot enter `/root`.
    public static func home(environment: [String: String]) -> URL {
        if let home = environment["CARDSYNC_HOME"], !home.isEmpty { return URL(fileURLWithPath: home) }
        if geteuid() == 0 { return URL(fileURLWithPath: "/var/lib/cardsync") }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("cardsync")
        }
        let user = environment["HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return user.appendingPathComponent(".local/share/cardsync")
    }

    /// The embedded cluster (whether or not it is in use).
    public func embeddedCluster(logger: Logger? = nil) throws -> LocalCluster {
        // A first sync writes a few GB of WAL per million events; with the default 1 GB between
        // checkpoints the server would stop to checkpoint several times during it.
        try LocalCluster(directory: home.appendingPathComponent("postgres"),
                         options: .init(serverSettings: ["max_wal_size": "4GB"]), logger: logger)
    }

    /// One line saying which database is in use, without any password.
    public var summary: String {
        switch source {
        case .flag, .environment:
            return "\(source.rawValue): \(ConnectionTarget.redactedConninfo(conninfo ?? ""))"
        case .embedded:
            return "embedded cluster in \(home.appendingPathComponent("postgres").path), database \(Self.embeddedDatabaseName)"
        }
    }

    /// Connects, starting the embedded cluster and creating its database when needed, and
    /// applies missing migrations (idempotent; reported on the logger).
    /// Connects to the selected database. `migrate`: true migrates (`db migrate`, tests), false
    /// checks nothing (a further connection after a checked one), nil (the default) is what an
    /// ordinary command does: the embedded default migrates itself on first use, any other
    /// database is only checked, and a schema older than this cardsync is an error that says
    /// to run `cardsync db migrate`.
    public func connect(logger: Logger, migrate: Bool? = nil,
                        applicationName: String = "cardsync") throws -> Connection {
        let connection: Connection
        switch source {
        case .flag, .environment:
            connection = try Connection(conninfo: conninfo ?? "", logger: logger)
        case .embedded:
            let cluster = try embeddedCluster(logger: logger)
            try cluster.start()
            try Self.createDatabaseIfMissing(Self.embeddedDatabaseName, cluster: cluster, logger: logger)
            connection = try Connection(
                conninfo: cluster.connectionURI(database: Self.embeddedDatabaseName) + "&application_name=\(applicationName)",
                logger: logger)
        }
        let migrates = migrate ?? (source == .embedded)
        if migrate == nil && !migrates {
            try Migrator(connection: connection, logger: logger).requireCurrent()
        }
        if migrates {
            let report = try Migrator(connection: connection, logger: logger).migrate()
            if !report.applied.isEmpty {
                logger.notice("applied schema migrations", metadata: ["versions": "\(report.applied)"])
            }
        }
        return connection
    }

    static func createDatabaseIfMissing(_ name: String, cluster: LocalCluster, logger: Logger) throws {
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"), logger: logger)
        let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [.text(name)])
        guard exists.isEmpty else { return }
        do {
            try admin.executeScript("CREATE DATABASE \(try admin.escapeIdentifier(name)) ENCODING 'UTF8'")
        } catch let error as PostgresError where error.sqlState == "42P04" {
            // Another cardsync process created it a moment ago.
        }
    }

    /// A conninfo string or URI as shown in messages, passwords replaced by `***`. libpq's own
    /// parser decides what the password is (`ConnectionTarget.redactedConninfo`), so that no
    /// form it accepts slips past a second, hand-written reading here.
    public static func redacted(_ conninfo: String) -> String {
        ConnectionTarget.redactedConninfo(conninfo)
    }
}

extension DatabaseSelection {
    /// The conninfo given by flag or environment, for tools that open further connections to the
    /// same server (benchmarks). Never print it: it may hold a password.
    public var conninfoForTools: String { conninfo ?? "" }
}
