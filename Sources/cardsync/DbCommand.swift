import ArgumentParser
import CardCore
import CardDatabase
import CardSync
import Foundation
import LocalPostgres
import Logging
import PostgresClient

struct DbCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the central database: schema migrations, verification, the embedded cluster.",
        discussion: """
            Examples:
              cardsync db status
              cardsync db migrate --database "$OWNER_URL"
              cardsync db verify --json
              cardsync db start --listen 0.0.0.0:5432 --tls
              cardsync db stop
            """,
        subcommands: [Migrate.self, Status.self, Verify.self, Partitions.self, Start.self, Stop.self, DbRolesCommand.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the schema migrations this cardsync ships (idempotent).",
            discussion: """
                Examples:
                  cardsync db migrate
                  cardsync db migrate --database 'postgresql://cardsync_owner@db.bureau.example/cardsync?sslmode=verify-full'
                """)
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            try db.prepareDemoDatabase(logger: Logger(label: "cardsync"))
            let connection = try db.selection.connect(logger: Logger(label: "cardsync.database"), migrate: false)
            // The roles' grants too: they name the tables this migration may have added.
            let report = try Migrator(connection: connection, logger: Logger(label: "cardsync.migrate")).migrate(privileges: true)
            if report.changedNothing {
                print("Nothing to do: the schema is already at version \(report.currentVersion).")
            } else {
                for version in report.applied {
                    let name = Migration.all.first { $0.version == version }?.name ?? ""
                    print("Applied migration \(version) (\(name)).")
                }
                print("The schema is now at version \(report.currentVersion).")
            }
            if let problem = report.rolesProblem {
                printError("Warning: \(problem)")
            } else {
                print("The roles' privileges match the model (cardsync db roles shows them).")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say which database is in use, where, whether it runs, and its schema version. Starts nothing.",
            discussion: """
                Examples:
                  cardsync db status
                  cardsync db status --database demo
                """)
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let selection = db.selection
            print("Database: \(db.summary)")
            var uri: String?
            switch selection.source {
            case .embedded:
                let cluster = try selection.embeddedCluster()
                let status = cluster.status
                print("Cluster directory: \(cluster.directory.path)")
                print("Data directory: \(status.dataDirectory.path)\(status.isInitialized ? "" : " (not created yet: created on first use)")")
                if let tcp = status.tcp {
                    print("Socket directory: \(status.socketDirectory.path)")
                    let when = status.isRunning ? "" : " (from the next start)"
                    if tcp.tls {
                        print("TCP: \(tcp), TLS only\(when); CA certificate: \(cluster.certificateAuthorityFile.path)")
                    } else {
                        print("TCP: \(tcp), without TLS (password authentication)\(when)")
                    }
                } else {
                    print("Socket directory: \(status.socketDirectory.path) (Unix socket only, no TCP)")
                }
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
                    : try selection.connect(logger: Logger(label: "cardsync.database"), migrate: false)
                print("Connected to: \(connection.target)")
                let entries = try Migrator(connection: connection, logger: Logger(label: "cardsync.migrate")).status()
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
            discussion: """
                Exits 1 if any difference is found; every difference is listed.

                Examples:
                  cardsync db verify
                  cardsync db verify --json
                """)
        @OptionGroup var db: DatabaseOptions
        @OptionGroup var output: OutputFormatOptions

        func run() throws {
            let connection = try db.connect()
            let report = try ProjectionVerifier(connection: connection).verify()
            if output.isJSON {
                print(report.json)
            } else {
                print(report.text)
            }
            if !report.isClean { throw ExitCode(1) }
        }
    }

    struct Partitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "partitions",
            abstract: "The ledger's monthly partitions: list them, create months ahead, detach an old month for archiving.",
            discussion: """
                The ledger is partitioned by the UTC month in which the centre recorded each event. \
                Every merge makes sure this month and the next exist; events that find no month \
                go to the default partition and move into their month when it is created. See \
                docs/deploy.md (Archiving old months of the ledger).

                Examples:
                  cardsync db partitions                     # months and their events
                  cardsync db partitions create --months 12  # this month and 12 more
                  cardsync db partitions detach --month 2024-01 --dry-run
                  cardsync db partitions detach --month 2024-01
                """,
            subcommands: [List.self, Create.self, Detach.self],
            defaultSubcommand: List.self)

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the ledger's partitions with their events, and the months detached for archiving.",
                discussion: """
                    Counts every partition's events (a scan of the ledger).

                    Examples:
                      cardsync db partitions list
                      cardsync db partitions list --json
                    """)
            @OptionGroup var db: DatabaseOptions
            @OptionGroup var output: OutputFormatOptions

            func run() throws {
                let partitions = LedgerPartitions(connection: try db.connect())
                let attached = try partitions.list()
                let archived = try partitions.archived()
                if output.isJSON {
                    print(JSONWriter.object([
                        ("partitions", .array(attached.map { p in
                            .object(["table": .string(p.name), "month": p.month.map(JSONValue.string) ?? .null,
                                     "events": .int(p.events)])
                        })),
                        ("archived", .array(archived.map { a in
                            .object(["month": .string(a.month), "table": .string(a.table), "events": .int(a.events)])
                        })),
                    ], pretty: true))
                    return
                }
                print("Ledger partitions (by the UTC month the centre recorded the event):")
                for p in attached {
                    let label = p.month ?? "default"
                    let note = p.month == nil && p.events > 0 ? "  (events outside every month: run cardsync db partitions create)" : ""
                    print("  \(label.padding(toLength: 8, withPad: " ", startingAt: 0))  cardsync.\(p.name)  \(p.events) events\(note)")
                }
                if archived.isEmpty {
                    print("No month has been detached for archiving.")
                } else {
                    print("Detached for archiving:")
                    for a in archived { print("  \(a.month)  \(a.table)  \(a.events) events") }
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create the ledger's missing monthly partitions: this month (or --from) and --months after it.",
                discussion: """
                    Idempotent; events waiting in the default partition move into their month. \
                    Run as the schema owner or a bureau role.

                    Examples:
                      cardsync db partitions create --months 12
                      cardsync db partitions create --from 2023-01 --months 1
                    """)
            @OptionGroup var db: DatabaseOptions
            @Option(name: .long, help: "How many months after the first one (the current one, or --from) to create.") var months = 1
            @Option(name: .long, help: ArgumentHelp("The first month to create (default: the current month).", valueName: "YYYY-MM"))
            var from: String?

            func validate() throws {
                if months < 0 || months > 240 { throw ValidationError("--months must be between 0 and 240") }
            }

            func run() throws {
                let made = try LedgerPartitions(connection: try db.connect()).create(from: from, monthsAhead: months)
                print(made == 0 ? "Every month already has its partition." : "Created \(made) monthly partition\(made == 1 ? "" : "s") of the ledger.")
            }
        }

        struct Detach: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Detach an old month of the ledger into the schema cardsync_archive, to dump and drop it.",
                discussion: """
                    Only a month before the current one whose applications are all closed, whose \
                    events are none pending, whose deliveries every agency has pulled, and whose \
                    applications have no events in other months; otherwise it says what blocks it \
                    and exits 1. Sync, merge, reconcile and db verify go on working: the month's \
                    event ids stay known. Run as the schema owner.

                    Examples:
                      cardsync db partitions detach --month 2024-01 --dry-run
                      cardsync db partitions detach --month 2024-01
                      pg_dump --table=cardsync_archive.ledger_2024_01 --format=custom --file=ledger_2024_01.dump "$URL"
                    """)
            @OptionGroup var db: DatabaseOptions
            @Option(name: .long, help: ArgumentHelp("The month to detach.", valueName: "YYYY-MM")) var month: String
            @Flag(name: .long, help: "Only say whether the month may be detached, and what blocks it.") var dryRun = false

            func run() throws {
                let partitions = LedgerPartitions(connection: try db.connect())
                let blockers = try partitions.blockers(month: month)
                if !blockers.isEmpty {
                    printError("The ledger's month \(month) cannot be detached yet:")
                    for b in blockers { printError("  \(b.reason): \(b.count)") }
                    throw ExitCode(1)
                }
                if dryRun {
                    print("The ledger's month \(month) may be detached: nothing blocks it.")
                    return
                }
                let table = try partitions.detach(month: month)
                print("Detached the ledger's month \(month) into \(table).")
                print("Archive it with pg_dump --table=\(table), then drop it (DROP TABLE \(table)); docs/deploy.md.")
            }
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create (if needed) and start the embedded cluster.",
            discussion: """
                By default the cluster listens on its Unix socket only. --listen HOST:PORT also \
                accepts TCP connections (password authentication); with --tls, TCP is TLS only, \
                with a certificate from the cluster's own CA, so agencies can connect with \
                sslmode=verify-full. The choice is kept for every later start (also the ones other \
                commands make on demand) until another --listen or --unix-socket-only.

                Examples:
                  cardsync db start
                  cardsync db start --listen 0.0.0.0:5432 --tls
                  cardsync db start --unix-socket-only
                """)
        @OptionGroup var db: DatabaseOptions
        @Option(name: .long, help: ArgumentHelp(
            "Also accept TCP connections on this address (an IP address, a host name, or 0.0.0.0 for every address; IPv6 in brackets).",
            valueName: "HOST:PORT"))
        var listen: String?
        @Flag(name: .long, help: "With --listen: TCP only over TLS (certificates are made on first use).")
        var tls = false
        @Flag(name: .long, help: "Listen on the Unix socket only again (forget an earlier --listen).")
        var unixSocketOnly = false

        func validate() throws {
            if tls && listen == nil { throw ValidationError("--tls requires --listen HOST:PORT") }
            if unixSocketOnly && listen != nil { throw ValidationError("--unix-socket-only and --listen contradict each other") }
        }

        func run() throws {
            let selection = db.selection
            // `--database demo` names a database of the embedded cluster: that cluster is started.
            guard selection.source == .embedded || db.demoAlias() != nil else {
                throw CommandFailure("db start manages the embedded cluster, but \(selection.summary) is selected",
                                     hint: "unset CARDSYNC_DATABASE_URL and drop --database to use the embedded cluster")
            }
            let cluster = try selection.embeddedCluster()
            let listening: LocalCluster.Listening
            do {
                if let listen {
                    listening = .tcp(try TCPListener(parsing: listen, tls: tls))
                } else {
                    listening = unixSocketOnly ? .unixSocketOnly : .saved
                }
                try cluster.start(listening: listening)
            } catch let error as LocalClusterError {
                throw CommandFailure("cannot start the embedded cluster: \(error.message)")
            }
            _ = try db.connect()  // Creates and migrates the database on a first start.
            print("The embedded cluster runs in \(cluster.directory.path) (socket in \(cluster.socketDirectory.path)).")
            guard let tcp = cluster.status.tcp else { return }
            if tcp.tls {
                let ca = cluster.certificateAuthorityFile.path
                print("Listening on TCP \(tcp), TLS only (TLS 1.2 or later), password authentication (scram-sha-256).")
                print("CA certificate: \(ca) (give agencies a copy: they verify the server with it)")
                print("Connect with: host=\(tcp.clientHost) port=\(tcp.port) dbname=\(DatabaseSelection.embeddedDatabaseName) sslmode=verify-full sslrootcert=\(ca)")
            } else {
                print("Listening on TCP \(tcp) without TLS, password authentication (scram-sha-256).")
                print("Connect with: host=\(tcp.clientHost) port=\(tcp.port) dbname=\(DatabaseSelection.embeddedDatabaseName)")
            }
            print("TCP clients log in as a role with a password (CREATE ROLE … LOGIN PASSWORD …, over the socket); the postgres superuser has none.")
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the embedded cluster.",
            discussion: """
                Stops the private cluster under CARDSYNC_HOME, whatever --database or \
                CARDSYNC_DATABASE_URL would select for other commands: a server cardsync did not \
                start is stopped by whoever runs it.

                Examples:
                  cardsync db stop
                  CARDSYNC_HOME=~/.local/share/cardsync cardsync db stop
                """)
        /// Accepted only as `--database demo`, the demo's database, which lives in that cluster: a
        /// clerk who typed `--database demo` on every command may type it here too.
        @Option(name: .long, help: .hidden) var database: String?

        func validate() throws {
            if let database, database != DatabaseOptions.demoAlias {
                throw ValidationError("db stop stops the embedded cluster under CARDSYNC_HOME only; it takes no --database (other than demo, which lives there)")
            }
        }

        func run() throws {
            // Only the embedded cluster can be stopped, so no --database: the environment's
            // URL is ignored on purpose.
            let cluster = try DatabaseSelection(flag: nil, environment: ProcessInfo.processInfo.environment
                .filter { $0.key != "CARDSYNC_DATABASE_URL" }).embeddedCluster()
            if !cluster.isRunning {
                print("The embedded cluster in \(cluster.directory.path) is not running.")
                return
            }
            try cluster.stop()
            print("Stopped the embedded cluster in \(cluster.directory.path).")
        }
    }
}
