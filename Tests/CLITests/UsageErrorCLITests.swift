import Foundation
import TestSupport
import Testing

/// A bad value typed on the command line is a usage error wherever it is found out: exit 64, the
/// cause named, and the usage of the subcommand the person typed (never the top level's).
@Suite struct UsageErrorCLITests {
    static let cases: [(arguments: [String], command: String, says: String)] = [
        (["report", "monthly", "--month", "2026-13"], "cardsync report monthly", "month must be 01 to 12"),
        (["report", "monthly", "--month", "October"], "cardsync report monthly", "must be YYYY-MM"),
        (["report", "monthly", "--month", "2026-10", "--timezone", "Mars/Olympus"], "cardsync report monthly", "unknown time zone"),
        (["report", "monthly", "--month", "2026-10", "--agency", "CS-NOPE-1"], "cardsync report monthly", "no agency with code CS-NOPE-1"),
        (["report", "monthly", "--month", "2026-10", "--agency", "bad code"], "cardsync report monthly", "agency code 'bad code'"),
        (["report", "backlog", "--as-of", "yesterday"], "cardsync report backlog", "cannot read \"yesterday\" as a time"),
        (["report", "throughput", "--from", "2026-08-01", "--to", "2026-09-01", "--timezone", "Nowhere/X"],
         "cardsync report throughput", "unknown time zone"),
        (["bureau", "approve", "not-a-uuid"], "cardsync bureau approve", "'not-a-uuid' is not an application id"),
        (["bureau", "reject", "9e2f3c1e-6f0a-4f5e-9a57-1f1d3c9f2a11", "--at", "noon"], "cardsync bureau reject", "--at 'noon'"),
    ]

    @Test func everyBadValueIsAUsageErrorOfItsOwnSubcommand() throws {
        let db = try TestDatabase.migratedDatabase()
        for c in Self.cases {
            let out = try CLIRunner.run(c.arguments + ["--database", db])
            let what = c.arguments.joined(separator: " ")
            #expect(out.status == 64, "\(what): exit \(out.status), \(out.stderr)")
            #expect(out.stderr.contains(c.says), "\(what): \(out.stderr)")
            #expect(out.stderr.contains("Usage: \(c.command) "), "\(what): \(out.stderr)")
            #expect(out.stderr.contains("See '\(c.command) --help'"), "\(what): \(out.stderr)")
            #expect(out.stdout.isEmpty, "\(what) printed \(out.stdout)")
        }
    }

    @Test func aConnectionStringLibpqCannotReadIsNamedAsSuchNotAsADownServer() throws {
        let flag = try CLIRunner.run(["conflicts", "list", "--database", "garbage value here"])
        #expect(flag.status == 1)
        #expect(flag.stderr.contains("--database is not a connection string libpq can read"), "\(flag.stderr)")
        #expect(!flag.stderr.contains("check that the server runs"), "\(flag.stderr)")
        let environment = try CLIRunner.run(["conflicts", "list"], environment: ["CARDSYNC_DATABASE_URL": "host=x port"])
        #expect(environment.stderr.contains("CARDSYNC_DATABASE_URL is not a connection string libpq can read"), "\(environment.stderr)")
    }

    @Test func dbStopHasNoDatabaseOptionAndStopsTheEmbeddedClusterWhateverTheEnvironmentSelects() throws {
        let home = try TemporaryDirectory(prefix: "cs-stop")
        defer { home.remove() }
        let environment = ["CARDSYNC_HOME": home.path + "/home", "CARDSYNC_DATABASE_URL": "postgresql://elsewhere.invalid/x"]
        #expect(try CLIRunner.run(["db", "stop", "--database", "x"], environment: environment).status == 64)
        let stopped = try CLIRunner.run(["db", "stop"], environment: environment)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stdout.contains("is not running"), "\(stopped.stdout)")
    }
}
