import CardCore
import Foundation
import TestSupport
import Testing

/// `cardsync queue init` and `queue append` run a second time, as an operator does after a
/// failure or by mistake: event_id is globally unique and agency.json is written once
/// (queue-format.md).
@Suite("CLI: queue init and append run again")
struct QueueCommandRerunTests {
    /// A valid input line (no seq) with its own event id.
    static func line(_ eventID: UUID = UUID(), occurredAt: String = "2026-10-03T09:15:27+08:00") -> String {
        #"{"event_id":"\#(eventID.uuidString.lowercased())","application_id":"9e2f3c1e-6f0a-4f5e-9a57-1f1d3c9f2a11","type":"withdrawn","occurred_at":"\#(occurredAt)","data":{"reason":"moved away"}}"#
    }

    func outboxLines(_ queue: String) throws -> [String] {
        try String(contentsOfFile: queue + "/outbox.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test("queue append of the same file twice appends nothing the second time and exits 1 naming the seqs")
    func appendSameFileTwice() throws {
        let dir = try TemporaryDirectory(prefix: "cardsync-rerun")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let file = dir.path + "/events.jsonl"
        try ([Self.line(), Self.line(occurredAt: "2026-10-03T09:15:27.123456789+08:00"), Self.line()].joined(separator: "\n") + "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let first = try CLIRunner.run(["queue", "append", queue, file])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("Appended 3 event(s), seq 1–3."))
        let before = try outboxLines(queue)

        let second = try CLIRunner.run(["queue", "append", queue, file])
        #expect(second.status == 1)
        #expect(second.stdout.contains("Appended nothing."))
        for (line, seq) in [(1, 1), (2, 2), (3, 3)] {
            #expect(second.stderr.contains("refused input line \(line): duplicate_event_id:"), "\(second.stderr)")
            #expect(second.stderr.contains("already in the outbox at seq \(seq)"), "\(second.stderr)")
        }
        #expect(try outboxLines(queue) == before)

        let json = try CLIRunner.run(["queue", "append", queue, file, "--json"])
        #expect(json.status == 1)
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(report?["appended"] as? Int == 0)
        let refused = report?["refused"] as? [[String: Any]] ?? []
        #expect(refused.compactMap { $0["seq"] as? Int } == [1, 2, 3])
        #expect(refused.compactMap { $0["error"] as? String } == Array(repeating: "duplicate_event_id", count: 3))
    }

    @Test("queue append of a file with some lines already present and some new appends only the new ones")
    func appendSomeOldSomeNew() throws {
        let dir = try TemporaryDirectory(prefix: "cardsync-rerun")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let old = [Self.line(), Self.line()]
        #expect(try CLIRunner.run(["queue", "append", queue, "-"], stdin: old.joined(separator: "\n") + "\n").status == 0)
        let new = [Self.line(), Self.line()]
        let out = try CLIRunner.run(["queue", "append", queue, "-"],
                                    stdin: [new[0], old[1], new[1], old[0]].joined(separator: "\n") + "\n")
        #expect(out.status == 1)
        #expect(out.stdout.contains("Appended 2 event(s), seq 3–4."), "\(out.stdout)")
        #expect(out.stderr.contains("refused input line 2: duplicate_event_id"))
        #expect(out.stderr.contains("at seq 2"))
        #expect(out.stderr.contains("refused input line 4: duplicate_event_id"))
        #expect(out.stderr.contains("at seq 1"))
        #expect(out.stderr.contains("no event was recorded twice"))
        let lines = try outboxLines(queue)
        #expect(lines.count == 4)
        #expect(lines[2].contains(new[0].dropFirst().prefix(40)))
    }

    @Test("queue init run again with the same identity, or options left out, changes nothing and says the queue exists")
    func initAgainChangesNothing() throws {
        let dir = try TemporaryDirectory(prefix: "cardsync-rerun")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        let full = ["queue", "init", queue, "--agency", "CS-FR-001", "--name", "芙蓉区社保卡服务网点", "--district", "芙蓉区"]
        let first = try CLIRunner.run(full)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("ready in"))
        let agencyFile = try String(contentsOfFile: queue + "/agency.json", encoding: .utf8)
        #expect(agencyFile.contains(#""district": "芙蓉区""#))
        for arguments in [full, ["queue", "init", queue, "--agency", "CS-FR-001"], full + ["--channel", "counter"]] {
            let again = try CLIRunner.run(arguments)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("already exists"), "\(again.stdout)")
            #expect(again.stdout.contains("nothing changed"))
            #expect(try String(contentsOfFile: queue + "/agency.json", encoding: .utf8) == agencyFile)
        }
    }

    @Test("queue init run again with another code, name, district or channel exits 1 naming the field and what the file holds")
    func initAgainWithAnotherIdentityIsRefused() throws {
        let dir = try TemporaryDirectory(prefix: "cardsync-rerun")
        defer { dir.remove() }
        let queue = dir.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001", "--name", "芙蓉区社保卡服务网点",
                                   "--district", "芙蓉区"]).status == 0)
        let agencyFile = try String(contentsOfFile: queue + "/agency.json", encoding: .utf8)
        let cases: [([String], [String])] = [
            (["--agency", "CS-FR-001", "--district", "天心区"], [#"district "天心区""#, #"agency.json holds "芙蓉区""#]),
            (["--agency", "CS-FR-001", "--name", "芙蓉区网点"], [#"name "芙蓉区网点""#, #"agency.json holds "芙蓉区社保卡服务网点""#]),
            (["--agency", "CS-FR-001", "--channel", "online"], ["channel online", "agency.json holds counter"]),
            (["--agency", "CS-YL-002"], ["already belongs to agency CS-FR-001"]),
        ]
        for (options, mentions) in cases {
            let out = try CLIRunner.run(["queue", "init", queue] + options)
            #expect(out.status == 1, "\(options): \(out.stdout)")
            for mention in mentions { #expect(out.stderr.contains(mention), "\(options): \(out.stderr)") }
            #expect(try String(contentsOfFile: queue + "/agency.json", encoding: .utf8) == agencyFile)
        }
    }
}
