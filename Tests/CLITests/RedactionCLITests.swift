import Foundation
import Testing

/// What `cardsync` prints about a database given with a password, whatever the conninfo's form.
@Suite struct RedactionCLITests {
    static let conninfos = [
        "host=/nonexistent-cardsync-dir dbname=x password = s3cretspaced",
        "host=/nonexistent-cardsync-dir dbname=x password='s3cret quoted'",
        "postgresql://clerk:s3cret%2Fpct@/x?host=/nonexistent-cardsync-dir",
        "postgresql:///x?host=/nonexistent-cardsync-dir&password=s3cretquery",
        "host=/nonexistent-cardsync-dir password='s3cret unterminated",
    ]

    @Test func dbStatusNeverPrintsThePassword() throws {
        for conninfo in Self.conninfos {
            for run in [try CLIRunner.run(["db", "status", "--database", conninfo]),
                        try CLIRunner.run(["db", "status"], environment: ["CARDSYNC_DATABASE_URL": conninfo])] {
                #expect(run.status == 1, "\(conninfo): \(run.stdout)")
                #expect(run.stdout.contains("Database: "))
                #expect(!run.stdout.contains("s3cret"), "\(conninfo): \(run.stdout)")
                #expect(!run.stderr.contains("s3cret"), "\(conninfo): \(run.stderr)")
            }
        }
    }
}
