import Foundation
import PostgresClient
import Testing
import TestSupport

/// "No command that an agency or the bureau runs alters the schema: only `db migrate` does, and a
/// command that finds the schema older than itself says to run it" (../shared/spec/cli.md).
@Suite("CLI: only db migrate changes the schema")
struct SchemaCheckCLITests {
    /// Whether the database holds any cardsync table.
    static func hasSchema(_ uri: String) throws -> Bool {
        let rows = try Connection(conninfo: uri).query("SELECT to_regclass('cardsync.schema_migrations') IS NOT NULL AS present")
        return try rows[0].decode(Bool.self, column: "present")
    }

    @Test("a read-only command on an empty database creates nothing and says to run cardsync db migrate")
    func readOnlyCommandDoesNotMigrate() throws {
        let db = try TestDatabase.freshDatabase()
        for command in [["agency", "list"], ["conflicts", "list"], ["report", "backlog"]] {
            let out = try CLIRunner.run(command + ["--database", db])
            #expect(out.status == 1, "\(command): \(out.stdout)")
            #expect(out.stderr.contains("cardsync db migrate"), "\(command): \(out.stderr)")
            #expect(try !Self.hasSchema(db), "\(command) created the schema")
        }
    }

    @Test("sync against a database with an older schema changes nothing and says to run cardsync db migrate")
    func syncOnAnOlderSchemaDoesNotMigrate() throws {
        // As a database migrated by the previous cardsync release looks: its last migration missing.
        let last = Int32(TestDatabase.shippedSchemaVersion)
        let db = try TestDatabase.migratedDatabase(throughVersion: Int(last) - 1)
        let conn = try Connection(conninfo: db)
        let dir = try TemporaryDirectory(prefix: "cardsync-schema")
        let queue = dir.url.appendingPathComponent("CS-FR-001").path
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)

        let out = try CLIRunner.run(["sync", queue, "--database", db])
        #expect(out.status == 1)
        #expect(out.stderr.contains("schema version \(last - 1)") && out.stderr.contains("cardsync db migrate"), "\(out.stderr)")
        let recorded = try conn.query("SELECT count(*) AS n FROM cardsync.schema_migrations WHERE version = $1", [.int32(last)])
        #expect(try recorded[0].decode(Int64.self, column: "n") == 0, "sync applied the migration")

        // After db migrate, the same sync works.
        #expect(try CLIRunner.run(["db", "migrate", "--database", db]).status == 0)
        #expect(try CLIRunner.run(["sync", queue, "--database", db]).status == 0)
    }
}
