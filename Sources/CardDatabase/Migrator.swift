import Logging
import PostgresClient

/// Applies the shipped migrations in order, each in one transaction with the row recording it.
///
/// Idempotent: a second run applies nothing and says so. Refuses to run over a database whose
/// recorded migration differs from the shipped one (edited after release, or a foreign schema),
/// and over a database migrated by a newer cardsync.
public struct Migrator {
    /// Serialises concurrent `migrate` runs (two agencies' first syncs on a new database).
    static let lockKey: Int64 = 0x6361_7264_6D69_6772 // "cardmigr"

    public struct Report: Sendable, Equatable {
        /// Versions applied by this run, in order.
        public var applied: [Int]
        /// The schema version after the run.
        public var currentVersion: Int
        /// Why the roles' privileges could not be applied (nil: they were, or were not due).
        public var rolesProblem: String?
        public var changedNothing: Bool { applied.isEmpty }
    }

    /// One row of `cardsync db status`.
    public struct Entry: Sendable {
        public var migration: Migration
        public var appliedAt: PostgresTimestamp?
    }

    public enum Failure: Error, CustomStringConvertible {
        case checksumMismatch(version: Int, name: String)
        case databaseIsNewer(version: Int)
        /// The database has no cardsync schema, or an older one: only `db migrate` changes it.
        case needsMigration(current: Int, shipped: Int)

        public var description: String {
            switch self {
            case .checksumMismatch(let version, let name):
                return "migration \(version) (\(name)) recorded in this database differs from the one this cardsync ships; "
                    + "the database was changed by another build or by hand. Refusing to migrate: restore the matching cardsync "
                    + "or repair the schema by hand."
            case .databaseIsNewer(let version):
                return "the database has migration \(version), which this cardsync does not know: it was migrated by a newer "
                    + "cardsync. Use that version."
            case .needsMigration(let current, let shipped):
                let state = current == 0 ? "has no cardsync schema yet" : "has schema version \(current)"
                return "the central database \(state); this cardsync needs version \(shipped). Only cardsync db migrate "
                    + "changes the schema: run it once with the schema owner's role (cardsync db migrate --database URL)."
            }
        }
    }

    let connection: Connection
    let migrations: [Migration]
    let logger: Logger

    public init(connection: Connection, migrations: [Migration] = Migration.all,
                logger: Logger) {
        self.connection = connection
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Applies what is missing, then the roles' privileges (`RolePrivileges`): always when
    /// `privileges` is true (`db migrate`), else only when a migration was applied.
    public func migrate(privileges: Bool = false) throws -> Report {
        try connection.execute("SELECT pg_advisory_lock($1)", [.int64(Self.lockKey)])
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1)", [.int64(Self.lockKey)]) }
        try connection.executeScript("""
            CREATE SCHEMA IF NOT EXISTS cardsync;
            CREATE TABLE IF NOT EXISTS cardsync.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        let recorded = try recordedChecksums()
        try verify(recorded)
        var applied: [Int] = []
        for migration in migrations where recorded[migration.version] == nil {
            try connection.withTransaction { conn in
                try conn.executeScript(migration.sql)
                try conn.execute(
                    "INSERT INTO cardsync.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [.int32(Int32(migration.version)), .text(migration.name), .text(try checksum(of: migration))])
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        var report = Report(applied: applied, currentVersion: migrations.last?.version ?? 0)
        // Grants name objects of the whole shipped schema; a partial migration (tests of old
        // schema versions) leaves them to the migration that completes it.
        if (privileges || !applied.isEmpty) && migrations.last?.version == Migration.all.last?.version {
            do {
                try RolePrivileges.apply(on: connection)
            } catch let failure as RolePrivileges.Failure {
                logger.warning("the schema is migrated but the bureau's roles are incomplete", metadata: ["why": "\(failure)"])
                report.rolesProblem = failure.description
            }
        }
        return report
    }

    /// Checks, without changing anything, that the database holds exactly the shipped schema.
    /// Ordinary commands call this instead of migrating: a least-privileged role cannot alter
    /// the schema, and a read-only command must not (cli.md: only `db migrate` does).
    public func requireCurrent() throws {
        let exists = try connection.query("SELECT to_regclass('cardsync.schema_migrations') IS NOT NULL AS present")
        let shipped = migrations.last?.version ?? 0
        guard try exists.first?.decode(Bool.self, column: "present") == true else {
            throw Failure.needsMigration(current: 0, shipped: shipped)
        }
        let recorded = try recordedChecksums()
        try verify(recorded)
        let current = recorded.keys.max() ?? 0
        if migrations.contains(where: { recorded[$0.version] == nil }) {
            throw Failure.needsMigration(current: current, shipped: shipped)
        }
    }

    /// Each shipped migration and when it was applied here (nil: not yet). Changes nothing.
    public func status() throws -> [Entry] {
        let exists = try connection.query("SELECT to_regclass('cardsync.schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.decode(Bool.self, column: "present") == true else {
            return migrations.map { Entry(migration: $0, appliedAt: nil) }
        }
        var appliedAt: [Int: PostgresTimestamp] = [:]
        for row in try connection.query("SELECT version, applied_at FROM cardsync.schema_migrations") {
            appliedAt[Int(try row.decode(Int32.self, column: "version"))] = try row.decode(PostgresTimestamp.self, column: "applied_at")
        }
        return migrations.map { Entry(migration: $0, appliedAt: appliedAt[$0.version]) }
    }

    private func recordedChecksums() throws -> [Int: String] {
        var result: [Int: String] = [:]
        for row in try connection.query("SELECT version, checksum FROM cardsync.schema_migrations") {
            result[Int(try row.decode(Int32.self, column: "version"))] = try row.decode(String.self, column: "checksum")
        }
        return result
    }

    private func verify(_ recorded: [Int: String]) throws {
        let shipped = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, sum) in recorded.sorted(by: { $0.key < $1.key }) {
            guard let migration = shipped[version] else { throw Failure.databaseIsNewer(version: version) }
            guard try checksum(of: migration) == sum else {
                throw Failure.checksumMismatch(version: version, name: migration.name)
            }
        }
    }

    /// SHA-256 of the migration's SQL, computed by the server (no hashing library needed).
    private func checksum(of migration: Migration) throws -> String {
        let row = try connection.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS sum", [.text(migration.sql)])
        return try row.first!.decode(String.self, column: "sum")
    }
}
