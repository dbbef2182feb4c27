import Foundation
import PostgresClient
import TestSupport
import Testing

/// `cardsync bureau` with application ids the central database does not know: refused one at a
/// time unless `--allow-unknown`, held and counted by `bureau import`.
@Suite struct BureauUnknownApplicationCLITests {
    /// A fresh database holding one synced application, and the scratch directory (remove it).
    private static func databaseWithOneApplication() throws -> (db: String, app: UUID, dir: TemporaryDirectory) {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-bureau-unknown")
        let queue = dir.path + "/CS-FR-001"
        let app = UUID()
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let appended = try CLIRunner.run(["queue", "append", queue, "-"], stdin: BureauCommandTests.submittedLine(app: app) + "\n")
        #expect(appended.status == 0, "\(appended.stderr)")
        let sync = try CLIRunner.run(["sync", queue, "--database", db])
        #expect(sync.status == 0, "\(sync.stderr)")
        return (db, app, dir)
    }

    private static func count(_ db: String, _ sql: PostgresQuery) throws -> Int {
        let rows = try Connection(conninfo: db).query(sql)
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    @Test func approvingAnUnknownIdIsRefusedAndNothingIsRecorded() throws {
        let (db, app, dir) = try Self.databaseWithOneApplication()
        defer { dir.remove() }
        let typo = UUID()
        for command in ["approve", "reject", "return", "produce"] {
            let out = try CLIRunner.run(["bureau", command, app.uuidString, typo.uuidString, "--database", db])
            #expect(out.status == 1, "bureau \(command): \(out.stdout)")
            #expect(out.stderr.contains(typo.uuidString.lowercased()), "bureau \(command): \(out.stderr)")
            #expect(!out.stderr.contains(app.uuidString.lowercased()), "bureau \(command) named the known id: \(out.stderr)")
            #expect(out.stderr.contains("synced"))
            #expect(out.stderr.contains("--allow-unknown"))
            #expect(out.stdout.isEmpty)
        }
        let dispatch = try CLIRunner.run(["bureau", "dispatch", typo.uuidString, "--agency", "CS-FR-001", "--database", db])
        #expect(dispatch.status == 1)
        #expect(dispatch.stderr.contains(typo.uuidString.lowercased()))
        // All or nothing: the known application got no decision either.
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.ledger WHERE type <> 'submitted'") == 0)
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.applications WHERE status = 'submitted'") == 1)
    }

    @Test func allowUnknownRecordsThemAsPendingAndSaysSo() throws {
        let (db, app, dir) = try Self.databaseWithOneApplication()
        defer { dir.remove() }
        let early = UUID()
        let text = try CLIRunner.run(["bureau", "approve", app.uuidString, early.uuidString, "--allow-unknown", "--database", db])
        #expect(text.status == 0, "\(text.stderr)")
        let line = text.stdout.split(separator: "\n").first { $0.contains(early.uuidString.lowercased()) } ?? ""
        #expect(line.contains("pending"))
        #expect(line.contains("not know"))
        #expect(text.stdout.split(separator: "\n").first { $0.contains(app.uuidString.lowercased()) }?.hasSuffix("applied") == true)

        let later = UUID()
        let json = try CLIRunner.run(["bureau", "reject", later.uuidString, "--reason", "照片不合格", "--allow-unknown", "--json", "--database", db])
        #expect(json.status == 0, "\(json.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let recorded = try #require((document?["recorded"] as? [[String: Any]])?.first)
        #expect(recorded["outcome"] as? String == "pending")
        #expect(recorded["application_known"] as? Bool == false)
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.ledger WHERE type <> 'submitted' AND outcome = 'pending'") == 2)
    }

    @Test func dispatchOfAnUnknownIdWithoutAnAgencyStillNeedsTheAgency() throws {
        let db = try TestDatabase.migratedDatabase()
        let out = try CLIRunner.run(["bureau", "dispatch", UUID().uuidString, "--allow-unknown", "--database", db])
        #expect(out.status == 1)
        #expect(out.stderr.contains("--agency"))
    }

    @Test func importHoldsUnknownApplicationsAndSaysHowMany() throws {
        let (db, app, dir) = try Self.databaseWithOneApplication()
        defer { dir.remove() }
        func line(_ type: String, _ id: UUID, _ data: String = "{}") -> String {
            #"{"event_id":"\#(UUID().uuidString.lowercased())","application_id":"\#(id.uuidString.lowercased())","type":"\#(type)","occurred_at":"2026-10-04T09:00:00+08:00","data":\#(data)}"#
        }
        let unknown = UUID()
        let file = dir.path + "/decisions.jsonl"
        try [line("approved", app), line("approved", unknown), line("rejected", UUID(), #"{"reason":"照片不合格"}"#)]
            .joined(separator: "\n").appending("\n").write(toFile: file, atomically: true, encoding: .utf8)
        let text = try CLIRunner.run(["bureau", "import", file, "--database", db])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("2 held as pending for applications the centre does not know yet"), "\(text.stdout)")

        let second = dir.path + "/more.jsonl"
        try (line("approved", UUID()) + "\n").write(toFile: second, atomically: true, encoding: .utf8)
        let json = try CLIRunner.run(["bureau", "import", second, "--json", "--database", db])
        #expect(json.status == 0, "\(json.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(document?["pending_unknown_applications"] as? Int == 1)
        #expect(document?["pending"] as? Int == 1)
    }
}
