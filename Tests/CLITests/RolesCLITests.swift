import CardCore
import Foundation
import PostgresClient
import Testing
import TestSupport

/// cli.md: `db roles [--json]` creates or checks the bureau's roles; `agency credentials CODE
/// [--json]` prints the agency's role and a new password once.
@Suite("CLI: roles and agency credentials")
struct RolesCLITests {
    @Test("db roles --json reports the three groups and no problem on a migrated database; a stray grant makes it exit 1 until run again")
    func dbRoles() throws {
        let db = try TestDatabase.migratedDatabase()
        let out = try CLIRunner.run(["db", "roles", "--json", "--database", db])
        #expect(out.status == 0, "\(out.stderr)")
        let doc = try JSONParser.parse(Array(out.stdout.utf8))
        #expect(doc["ok"] == .bool(true))
        #expect(doc["groups"]?.arrayValue?.compactMap { $0["role"]?.stringValue }
                == ["cardsync_merge", "cardsync_bureau", "cardsync_agency"])
        // A grant made by hand beyond the model is found, and db roles takes it back.
        try Connection(conninfo: db).executeScript("GRANT SELECT ON cardsync.ledger TO cardsync_agency")
        let check = try Connection(conninfo: db).query(
            "SELECT has_table_privilege('cardsync_agency', 'cardsync.ledger', 'SELECT') AS may")
        #expect(try check[0].decode(Bool.self, column: "may"))
        let again = try CLIRunner.run(["db", "roles", "--database", db])
        #expect(again.status == 0, "the model is applied first: \(again.stdout)")
        let after = try Connection(conninfo: db).query(
            "SELECT has_table_privilege('cardsync_agency', 'cardsync.ledger', 'SELECT') AS may")
        #expect(try !after[0].decode(Bool.self, column: "may"))
    }

    @Test("agency credentials --json prints role, password and a URI; the password is nowhere else; a second run rotates it")
    func credentials() throws {
        let db = try TestDatabase.migratedDatabase()
        let code = "CR" + String(UUID().uuidString.prefix(6))
        #expect(try CLIRunner.run(["agency", "add", code, "--name", "测试网点", "--database", db]).status == 0)
        let first = try CLIRunner.run(["agency", "credentials", code, "--json", "--database", db,
                                       "--host", "db.bureau.example", "--port", "5432"])
        #expect(first.status == 0, "\(first.stderr)")
        let doc = try JSONParser.parse(Array(first.stdout.utf8))
        #expect((doc.objectValue ?? [:]).keys.sorted() == ["agency_code", "password", "role", "uri"])
        let password = try #require(doc["password"]?.stringValue)
        let role = try #require(doc["role"]?.stringValue)
        #expect(doc["uri"]?.stringValue == "postgresql://\(role):\(password)@db.bureau.example:5432/\(try Self.databaseName(db))?sslmode=verify-full")
        #expect(!first.stderr.contains(password))
        let second = try CLIRunner.run(["agency", "credentials", code, "--json", "--database", db])
        let rotated = try JSONParser.parse(Array(second.stdout.utf8))["password"]?.stringValue
        #expect(rotated != nil && rotated != password)
        // Not registered: a clear refusal.
        let unknown = try CLIRunner.run(["agency", "credentials", "NO-SUCH-9", "--database", db])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("not registered"))
    }

    static func databaseName(_ uri: String) throws -> String {
        let rows = try Connection(conninfo: uri).query("SELECT current_database() AS d")
        return try rows[0].decode(String.self, column: "d")
    }
}
