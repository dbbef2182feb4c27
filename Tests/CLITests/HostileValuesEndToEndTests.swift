import CardCore
import Foundation
import PostgresClient
import TestSupport
import Testing

/// Values an attacker or a broken counter program can put in a queue, followed from the outbox
/// through the ledger to `conflicts show`, the reports and every CSV: stored exactly or
/// quarantined, shown escaped, never executed, never a crash.
@Suite struct HostileValuesEndToEndTests {
    /// SQL metacharacters, a spreadsheet formula and HTML in one name.
    static let sqlAndFormula = #"=HYPERLINK("http://evil.example")'; DROP TABLE cardsync.ledger;--<script>alert(1)</script>"#
    /// Terminal escape sequences (clear screen, retitle), a bell, and a right-to-left override.
    static let terminalControls = "+王小明\u{1B}[2J\u{1B}]0;pwned\u{07}\u{202E}reversed"

    static func line(seq: Int, app: UUID, childName: String, guardianName: String, address: String) throws -> [UInt8] {
        let child = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2020, month: 5, day: 1)!, sequence: 11).text
        let guardian = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 1990, month: 2, day: 3)!, sequence: 12).text
        let event: [String: Any] = [
            "seq": seq, "event_id": UUID().uuidString.lowercased(), "application_id": app.uuidString.lowercased(),
            "type": "submitted", "occurred_at": "2026-10-03T09:15:27+08:00",
            "data": [
                "channel": "counter",
                "child": ["name": childName, "id_number": child, "birth_date": "2020-05-01", "sex": "M"],
                "guardian": ["name": guardianName, "id_number": guardian, "relationship": "father", "phone": "13812345678"],
                "household": ["register_number": "430102000123", "address": address],
                "documents": ["birth_certificate", "household_register", "guardian_id"],
            ] as [String: Any],
        ]
        return Array(try JSONSerialization.data(withJSONObject: event))
    }

    /// No byte that a terminal acts on (ESC, BEL, the other C0 controls but newline) nor U+202E.
    static func expectInert(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let active = text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F || $0 == "\u{202E}" }
        #expect(active.isEmpty, "\(what) prints \(active.count) control character(s) raw", sourceLocation: sourceLocation)
    }

    @Test func hostileValuesAreStoredExactlyShownEscapedAndNeverExecuted() throws {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-hostile-e2e")
        defer { dir.remove() }
        let queueA = dir.path + "/CS-FR-001", queueB = dir.path + "/CS-YL-002"
        #expect(try CLIRunner.run(["queue", "init", queueA, "--agency", "CS-FR-001", "--name", Self.sqlAndFormula]).status == 0)
        #expect(try CLIRunner.run(["queue", "init", queueB, "--agency", "CS-YL-002", "--name", Self.terminalControls]).status == 0)

        // The same child at both agencies (a duplicate_application conflict to show), an address
        // of 900 KiB (valid: under the 1 MiB line limit), a raw NUL and a 1.5 MiB line.
        let appA = UUID(), appB = UUID(), appLong = UUID()
        let longAddress = String(repeating: "长沙", count: 900 * 1024 / 6)
        var outboxA: [UInt8] = []
        outboxA += try Self.line(seq: 1, app: appA, childName: Self.terminalControls, guardianName: Self.sqlAndFormula,
                                 address: "=1+2\u{1B}]0;pwn\u{07}") + [0x0A]
        outboxA += try Self.line(seq: 2, app: appLong, childName: "李四", guardianName: "李大", address: longAddress) + [0x0A]
        let rawNUL = Array(#"{"seq":3,"note":"a"#.utf8) + [0x00] + Array(#"b"}"#.utf8)
        let tooLong = Array(#"{"seq":4,"note":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: 1_572_864) + Array(#""}"#.utf8)
        outboxA += rawNUL + [0x0A] + tooLong + [0x0A]
        try Data(outboxA).write(to: URL(fileURLWithPath: queueA + "/outbox.jsonl"))
        try Data(try Self.line(seq: 1, app: appB, childName: Self.sqlAndFormula, guardianName: "王建国", address: "x") + [0x0A])
            .write(to: URL(fileURLWithPath: queueB + "/outbox.jsonl"))

        let sync = try CLIRunner.run(["sync", queueA, queueB, "--database", db])
        #expect(sync.status == 0, "\(sync.stderr)")
        Self.expectInert(sync.stdout + sync.stderr, "sync")

        // Nothing was executed, everything valid is stored exactly.
        let central = try Connection(conninfo: db)
        #expect(try central.query("SELECT to_regclass('cardsync.ledger') IS NOT NULL AS ok")[0].decode(Bool.self, column: "ok"))
        let stored = try central.query("""
            SELECT data->'child'->>'name' AS child, data->'guardian'->>'name' AS guardian, data->'household'->>'address' AS address
            FROM cardsync.ledger WHERE application_id = $1
            """, [.uuid(appA)])
        #expect(try stored[0].decode(String.self, column: "child") == Self.terminalControls)
        #expect(try stored[0].decode(String.self, column: "guardian") == Self.sqlAndFormula)
        let long = try central.query("SELECT data->'household'->>'address' AS a FROM cardsync.ledger WHERE application_id = $1", [.uuid(appLong)])
        #expect(try long[0].decode(String.self, column: "a") == longAddress)
        #expect(try central.query("SELECT name FROM cardsync.agencies WHERE code = 'CS-YL-002'")[0].decode(String.self, column: "name")
            == Self.terminalControls)

        // The two bad lines are quarantined with their bytes exactly.
        let quarantine = try String(contentsOfFile: queueA + "/quarantine.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        #expect(quarantine.compactMap { $0["error"] as? String }.sorted() == ["line_too_long", "malformed_json"])
        for entry in quarantine {
            let base64 = entry["raw_base64"] as? String
            let raw = base64.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? Array(((entry["raw"] as? String) ?? "").utf8)
            #expect(raw == rawNUL || raw == tooLong, "quarantined bytes differ from the outbox line")
        }

        // conflicts show: escaped on the terminal, exact in JSON, identity numbers masked.
        let list = try CLIRunner.run(["conflicts", "list", "--format", "json", "--database", db])
        let conflicts = (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["conflicts"] as? [[String: Any]]
        let conflictID = try #require(conflicts?.first?["conflict_id"] as? Int)
        let id = String(conflictID)
        let show = try CLIRunner.run(["conflicts", "show", id, "--database", db])
        #expect(show.status == 0, "\(show.stderr)")
        Self.expectInert(show.stdout, "conflicts show")
        #expect(show.stdout.contains(#"\u{1B}[2J"#))
        #expect(show.stdout.contains("DROP TABLE cardsync.ledger"))
        #expect(!show.stdout.contains(IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2020, month: 5, day: 1)!, sequence: 11).text))
        let showJSON = try CLIRunner.run(["conflicts", "show", id, "--json", "--database", db])
        Self.expectInert(showJSON.stdout, "conflicts show --json")
        let parsed = try JSONSerialization.jsonObject(with: Data(showJSON.stdout.utf8))
        #expect("\(parsed)".contains("pwned"))

        // A note and a name typed by the operator, then every CSV: formulas open as text.
        let resolve = try CLIRunner.run(["conflicts", "resolve", id, "--keep", appA.uuidString, "--note", "=SUM(1+1)", "--by", "@admin",
                                         "--database", db])
        #expect(resolve.status == 0, "\(resolve.stderr)")
        let csv = try CLIRunner.run(["conflicts", "list", "--status", "all", "--format", "csv", "--database", db]).stdout
        #expect(csv.contains(",'@admin,'=SUM(1+1),"), "\(csv)")
        for format in ["csv", "text", "md", "html"] {
            let report = try CLIRunner.run(["report", "monthly", "--month", "2026-10", "--format", format, "--database", db])
            #expect(report.status == 0, "report \(format): \(report.stderr)")
            if format != "csv" { Self.expectInert(report.stdout, "report monthly --format \(format)") }
            #expect(!report.stdout.contains("13812345678"), "report \(format) shows a phone number")
            switch format {
            case "csv": #expect(report.stdout.contains(#""'=HYPERLINK(""http://evil.example"")"#), "\(report.stdout.prefix(600))")
            case "html":
                #expect(!report.stdout.contains("<script>"))
                #expect(report.stdout.contains("&lt;script&gt;"))
            default: #expect(report.stdout.contains("DROP TABLE cardsync.ledger"))
            }
        }
        let verify = try CLIRunner.run(["db", "verify", "--database", db])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
