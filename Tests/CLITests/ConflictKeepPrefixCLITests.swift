import Foundation
import TestSupport
import Testing

/// `conflicts resolve --keep` takes the 8-character id that `conflicts list` shows, when it names
/// exactly one of the conflict's applications.
@Suite struct ConflictKeepPrefixCLITests {
    @Test func theListedShortIdIsEnoughToKeepAnApplication() throws {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-keep-prefix")
        defer { dir.remove() }
        // The same child at two agencies: a duplicate_application conflict.
        let first = UUID(), second = UUID()
        for (code, app) in [("CS-FR-001", first), ("CS-YL-002", second)] {
            let queue = dir.path + "/" + code
            #expect(try CLIRunner.run(["queue", "init", queue, "--agency", code]).status == 0)
            let appended = try CLIRunner.run(["queue", "append", queue, "-"], stdin: BureauCommandTests.submittedLine(app: app) + "\n")
            #expect(appended.status == 0, "\(appended.stderr)")
            let sync = try CLIRunner.run(["sync", queue, "--database", db])
            #expect(sync.status == 0, "\(sync.stderr)")
        }
        let list = try CLIRunner.run(["conflicts", "list", "--database", db])
        let short = String(second.uuidString.lowercased().prefix(8))
        #expect(list.stdout.contains(short), "\(list.stdout)")
        let id = try #require(list.stdout.split(separator: "\n").first { $0.contains("duplicate_application") }?
            .split(separator: " ").first.map(String.init))

        let unknown = try CLIRunner.run(["conflicts", "resolve", id, "--keep", "00000000", "--database", db])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("none of conflict \(id)'s applications"), "\(unknown.stderr)")
        let notAnID = try CLIRunner.run(["conflicts", "resolve", id, "--keep", "wang", "--database", db])
        #expect(notAnID.status == 64, "\(notAnID.stderr)")

        let kept = try CLIRunner.run(["conflicts", "resolve", id, "--keep", short.uppercased(), "--json", "--database", db])
        #expect(kept.status == 0, "\(kept.stderr)")
        let resolution = try JSONSerialization.jsonObject(with: Data(kept.stdout.utf8)) as? [String: Any]
        #expect("\(resolution ?? [:])".contains(second.uuidString.lowercased()), "\(kept.stdout)")
        let all = try CLIRunner.run(["conflicts", "list", "--status", "all", "--format", "json", "--database", db])
        #expect(all.stdout.contains(#""kept_application_id": "\#(second.uuidString.lowercased())""#)
                || all.stdout.contains(#""kept_application_id":"\#(second.uuidString.lowercased())""#), "\(all.stdout)")
    }
}
