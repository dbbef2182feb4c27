import Foundation
import CardCore
import PostgresClient
import TestSupport
import Testing

/// The command line as ../shared/spec/cli.md fixes it, exercised through the real executable.
@Suite struct CLITests {
    @Test func versionIsPrinted() throws {
        let out = try CLIRunner.run(["--version"])
        #expect(out.status == 0)
        #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test func everyCommandHasHelp() throws {
        for command in [["db"], ["db", "migrate"], ["agency", "add"], ["queue", "append"], ["sync"], ["bureau", "import"],
                        ["conflicts", "resolve"], ["report", "monthly"], ["reconcile"], ["generate"], ["demo"], ["bench", "sync"]] {
            let out = try CLIRunner.run(command + ["--help"])
            #expect(out.status == 0, "\(command) --help failed: \(out.stderr)")
            #expect(out.stdout.contains("USAGE"), "\(command) --help printed no usage")
        }
    }

    @Test func migrateTwiceChangesNothingTheSecondTimeAndSaysSo() throws {
        let db = try TestDatabase.freshDatabase()
        let first = try CLIRunner.run(["db", "migrate", "--database", db])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("Applied migration 1"))
        let second = try CLIRunner.run(["db", "migrate", "--database", db])
        #expect(second.status == 0)
        #expect(second.stdout.contains("Nothing to do"))
        #expect(!second.stdout.contains("Applied"))
    }

    @Test func statusWithoutConfigurationStartsNothingAndSaysWhereTheClusterIs() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-home")
        defer { home.remove() }
        let out = try CLIRunner.run(["db", "status"], environment: ["CARDSYNC_HOME": home.path])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("embedded"))
        #expect(out.stdout.contains(home.path + "/postgres"))
        #expect(out.stdout.contains("not running"))
        // Nothing was created: no data directory, no server.
        #expect(!FileManager.default.fileExists(atPath: home.path + "/postgres/data"))
    }

    @Test func unreachableDatabaseIsAClearFailureWithoutThePassword() throws {
        let out = try CLIRunner.run(["agency", "list", "--database", "postgresql://clerk:s3cretpass@127.0.0.1:1/cardsync?connect_timeout=3"])
        #expect(out.status == 1)
        #expect(out.stderr.contains("could not connect"))
        #expect(out.stderr.contains("127.0.0.1"))
        #expect(!out.stderr.contains("s3cretpass"))
        #expect(!out.stdout.contains("s3cretpass"))
    }

    @Test func agencyAddThenListAsJSON() throws {
        let db = try TestDatabase.migratedDatabase()
        let add = try CLIRunner.run(["agency", "add", "CS-FR-001", "--name", "芙蓉区社保卡服务网点", "--district", "芙蓉区", "--database", db])
        #expect(add.status == 0, "\(add.stderr)")
        let bad = try CLIRunner.run(["agency", "add", "cs-fr", "--name", "x", "--database", db])
        #expect(bad.status != 0 && bad.status != 1, "a bad code is a usage error")
        let list = try CLIRunner.run(["agency", "list", "--json", "--database", db])
        let json = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        let agencies = json?["agencies"] as? [[String: Any]]
        #expect(agencies?.count == 1)
        #expect(agencies?.first?["name"] as? String == "芙蓉区社保卡服务网点")
    }

    @Test func queueAppendRefusesInvalidLinesWithTheirCodeAndAppendsTheValidOnes() throws {
        let dir = try TemporaryDirectory(prefix: "cardsync-queue")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let valid = #"{"event_id":"4b0d5c1e-6f0a-4f5e-9a57-1f1d3c9f2a10","application_id":"9e2f3c1e-6f0a-4f5e-9a57-1f1d3c9f2a11","type":"withdrawn","occurred_at":"2026-10-03T09:15:27+08:00","data":{"reason":"moved away"}}"#
        let invalid = #"{"event_id":"not-a-uuid","application_id":"9e2f3c1e-6f0a-4f5e-9a57-1f1d3c9f2a11","type":"withdrawn","occurred_at":"2026-10-03T09:15:27+08:00","data":{"reason":"x"}}"#
        let out = try CLIRunner.run(["queue", "append", queue, "-"], stdin: valid + "\n" + invalid + "\n")
        #expect(out.status == 1)
        #expect(out.stderr.contains("bad_uuid"))
        let outbox = try String(contentsOfFile: queue + "/outbox.jsonl", encoding: .utf8)
        #expect(outbox.split(separator: "\n").count == 1)
        #expect(outbox.contains(#""seq":1"#))
        let status = try CLIRunner.run(["queue", "status", queue, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(json?["unsynced_events"] as? Int == 1)
    }
}

@Suite struct AgencyCredentialsTests {
    @Test func credentialsCreateAnAgencyRoleWithAScramVerifierAndRotationReplacesThePassword() throws {
        let db = try TestDatabase.migratedDatabase()
        let code = "CS-CR-\(Int.random(in: 100...999))"
        #expect(try CLIRunner.run(["agency", "add", code, "--name", "测试网点", "--database", db]).status == 0)
        let first = try CLIRunner.run(["agency", "credentials", code, "--json", "--database", db])
        #expect(first.status == 0, "\(first.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: String]
        let role = try #require(json?["role"])
        let password = try #require(json?["password"])
        #expect(json?["agency_code"] == code)
        #expect(password.count >= 20)
        let second = try CLIRunner.run(["agency", "credentials", code, "--json", "--database", db])
        let rotated = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: String]
        #expect(rotated?["role"] == role)
        #expect(rotated?["password"] != password)
        // The server keeps a SCRAM verifier, never the password itself.
        let admin = try TestDatabase.connect()
        let stored = try admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [.text(role)])
        let verifier = try stored.first?.decode(String.self, column: "rolpassword") ?? ""
        #expect(verifier.hasPrefix("SCRAM-SHA-256$"))
        #expect(!verifier.contains(rotated?["password"] ?? "?"))
    }

    @Test func credentialsForAnUnknownAgencyFailClearly() throws {
        let db = try TestDatabase.migratedDatabase()
        let out = try CLIRunner.run(["agency", "credentials", "CS-NONE-1", "--database", db])
        #expect(out.status == 1)
        #expect(out.stderr.contains("not registered"))
    }
}

@Suite struct BureauCommandTests {
    /// A valid `submitted` line (without seq) for a child born 2020-05-01 and a guardian born 1990-02-03.
    static func submittedLine(app: UUID) -> String {
        let child = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2020, month: 5, day: 1)!, sequence: 11).text
        let guardian = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 1990, month: 2, day: 3)!, sequence: 12).text
        return #"{"event_id":"\#(UUID().uuidString.lowercased())","application_id":"\#(app.uuidString.lowercased())","type":"submitted","occurred_at":"2026-10-03T09:15:27+08:00","data":{"channel":"counter","child":{"name":"王小明","id_number":"\#(child)","birth_date":"2020-05-01","sex":"M"},"guardian":{"name":"王建国","id_number":"\#(guardian)","relationship":"father","phone":"13812345678"},"household":{"register_number":"430102000123","address":"长沙市芙蓉区五一大道100号"},"documents":["birth_certificate","household_register","guardian_id"]}}"#
    }

    @Test func decisionsNeedOnlyTheApplicationIdAndReachTheAgencyInbox() throws {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-bureau")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        let app = UUID()
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let appended = try CLIRunner.run(["queue", "append", queue, "-"], stdin: Self.submittedLine(app: app) + "\n")
        #expect(appended.status == 0, "\(appended.stderr)")
        #expect(try CLIRunner.run(["sync", queue, "--database", db]).status == 0)
        for command in ["approve", "produce", "dispatch"] {
            let out = try CLIRunner.run(["bureau", command, app.uuidString, "--database", db])
            #expect(out.status == 0, "bureau \(command): \(out.stderr)")
            #expect(out.stdout.contains("applied"), "bureau \(command): \(out.stdout)")
        }
        let sync = try CLIRunner.run(["sync", queue, "--json", "--database", db])
        let json = try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)) as? [String: Any]
        #expect((json?["totals"] as? [String: Any])?["pulled"] as? Int == 3)
        let inbox = try String(contentsOfFile: queue + "/inbox.jsonl", encoding: .utf8)
        #expect(inbox.contains(#""type":"card_dispatched""#))
        #expect(inbox.contains(#""agency_code":"CS-FR-001""#))
        let status = try CLIRunner.run(["queue", "status", queue, "--json"])
        let view = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect((view?["applications_by_status"] as? [String: Int])?["dispatched"] == 1)
        #expect(view?["cards_to_hand_over"] as? Int == 1)
    }

    @Test func dispatchOfAnUnknownApplicationWithoutAnAgencyIsAClearFailure() throws {
        let db = try TestDatabase.migratedDatabase()
        let out = try CLIRunner.run(["bureau", "dispatch", UUID().uuidString, "--database", db])
        #expect(out.status == 1)
        #expect(out.stderr.contains("--agency"))
    }
}
