import CardCore
import Foundation
import PostgresClient
import TestSupport
import Testing

/// `cardsync status` (docs/monitoring.md) after real syncs, run with a bureau role: exit 0 when
/// fresh, 2 when an agency is stale or the merge is behind; conflicts by kind; metrics file.
@Suite struct StatusCLITests {
    /// A submission of a child no other line of this process names (unless `child` is given).
    static func submittedLine(app: UUID = UUID(), child: Int? = nil) -> String {
        let n = child ?? ChildNumbers.shared.next()
        // An odd sequence: the 17th digit says male, as the line does.
        let birth = CivilDate(year: 2015 + n / 500 % 9, month: 3, day: 1)!
        let id = IdentityNumber.make(regionCode: "430102", birthDate: birth, sequence: n % 500 * 2 + 1).text
        let guardian = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 1990, month: 2, day: 3)!, sequence: 12).text
        return #"{"event_id":"\#(UUID().uuidString.lowercased())","application_id":"\#(app.uuidString.lowercased())","type":"submitted","occurred_at":"2026-10-03T09:15:27+08:00","data":{"channel":"counter","child":{"name":"王小明","id_number":"\#(id)","birth_date":"\#(birth.description)","sex":"M"},"guardian":{"name":"王建国","id_number":"\#(guardian)","relationship":"father","phone":"13812345678"},"household":{"register_number":"430102000123","address":"长沙市芙蓉区五一大道100号"},"documents":["birth_certificate","household_register","guardian_id"]}}"#
    }

    static func json(_ out: CLIRunner.Output) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stdout)\n\(out.stderr)")
    }

    static func agencyRow(_ doc: [String: Any], _ code: String) throws -> [String: Any] {
        try #require((doc["agencies"] as? [[String: Any]])?.first { $0["agency_code"] as? String == code }, "\(doc)")
    }

    @Test func freshThenStaleAfterTheThresholdOrWithoutAnySync() throws {
        let world = try StagingWorld(prefix: "cardsync-status-fresh")
        defer { world.dir.remove() }
        let owner = (world.ownerQueue as NSString).lastPathComponent
        #expect(try CLIRunner.run(["queue", "append", world.ownerQueue, "-"], stdin: Self.submittedLine() + "\n").status == 0)
        #expect(try CLIRunner.run(["sync", world.ownerQueue, "--database", world.db]).status == 0)
        // The staging agency syncs too, and the merge applies what it staged.
        try world.stagedSync(events: 1)
        #expect(try CLIRunner.run(["merge", "--database", world.bureauURI]).status == 0)
        // A sync with nothing to push or pull is a successful sync as well.
        #expect(try CLIRunner.run(["sync", world.stagedQueue, "--merge-wait", "0", "--database", world.agencyURI]).status == 0)

        let fresh = try CLIRunner.run(["status", "--json", "--database", world.bureauURI])
        #expect(fresh.status == 0, "\(fresh.stdout)\n\(fresh.stderr)")
        let doc = try Self.json(fresh)
        for code in [owner, world.agency] {
            let row = try Self.agencyRow(doc, code)
            #expect(row["last_sync_at"] is String, "\(row)")
            #expect(row["stale"] as? Bool == false)
            #expect(row["unmerged_events"] as? Int == 0)
            #expect(row["open_applications"] as? Int == 1)
            #expect(row["quarantined_lines"] is NSNull, "quarantine is not known centrally: \(row)")
        }
        #expect((doc["merge"] as? [String: Any])?["last_merged_at"] is String)
        #expect((doc["merge"] as? [String: Any])?["behind"] as? Bool == false)
        let text = try CLIRunner.run(["status", "--database", world.bureauURI])
        #expect(text.status == 0)
        #expect(text.stdout.contains(world.agency) && text.stdout.contains("not known centrally"), "\(text.stdout)")
        for line in text.stdout.split(separator: "\n") { #expect(line.count <= 100, "\(line)") }
        // Nothing personal: no identity number or phone of the submissions.
        #expect(!text.stdout.contains("13812345678") && !text.stdout.contains("430102"), "\(text.stdout)")

        // Two hours since the owner's agency last synced: stale at the default hour, not at 3h.
        let admin = try Connection(conninfo: world.db)
        try admin.execute("UPDATE cardsync.agency_sync_state SET last_pull_at = now() - interval '2 hours' WHERE agency_code = $1", [.text(owner)])
        let stale = try CLIRunner.run(["status", "--json", "--database", world.bureauURI])
        #expect(stale.status == 2, "\(stale.stdout)\n\(stale.stderr)")
        #expect(try Self.agencyRow(try Self.json(stale), owner)["stale"] as? Bool == true)
        #expect(try Self.agencyRow(try Self.json(stale), world.agency)["stale"] as? Bool == false)
        #expect(try CLIRunner.run(["status", "--stale-after", "3h", "--database", world.bureauURI]).status == 0)
        #expect(try CLIRunner.run(["status", "--stale-after", "7200", "--database", world.bureauURI]).status == 2)
        let staleText = try CLIRunner.run(["status", "--database", world.bureauURI])
        #expect(staleText.stdout.contains("STALE") && staleText.stdout.contains("2h"), "\(staleText.stdout)")

        // An agency registered but never synced: not stale while new, stale once registered longer.
        try admin.execute("UPDATE cardsync.agency_sync_state SET last_pull_at = now() WHERE agency_code = $1", [.text(owner)])
        #expect(try CLIRunner.run(["agency", "add", "CS-NEW-001", "--name", "新网点", "--database", world.db]).status == 0)
        let newcomer = try CLIRunner.run(["status", "--json", "--database", world.bureauURI])
        #expect(newcomer.status == 0, "\(newcomer.stdout)")
        #expect(try Self.agencyRow(try Self.json(newcomer), "CS-NEW-001")["last_sync_at"] is NSNull)
        try admin.execute("UPDATE cardsync.agencies SET registered_at = now() - interval '2 days' WHERE code = $1", [.text("CS-NEW-001")])
        let never = try CLIRunner.run(["status", "--json", "--stale-after", "1d", "--database", world.bureauURI])
        #expect(never.status == 2, "\(never.stdout)")
        #expect(try Self.agencyRow(try Self.json(never), "CS-NEW-001")["stale"] as? Bool == true)
        #expect(try CLIRunner.run(["status", "--stale-after", "3d", "--database", world.bureauURI]).status == 0)

        let bad = try CLIRunner.run(["status", "--stale-after", "soon", "--database", world.bureauURI])
        #expect(bad.status == 64, "\(bad.stderr)")
    }

    @Test func mergeBehindWhenAStagedBatchWaitsTooLong() throws {
        let world = try StagingWorld(prefix: "cardsync-status-merge")
        defer { world.dir.remove() }
        try world.stagedSync(events: 3)
        // Staged a moment ago: within the default five minutes.
        let waiting = try CLIRunner.run(["status", "--json", "--database", world.bureauURI])
        #expect(waiting.status == 0, "\(waiting.stdout)\n\(waiting.stderr)")
        #expect(try Self.agencyRow(try Self.json(waiting), world.agency)["unmerged_events"] as? Int == 3)
        #expect((try Self.json(waiting)["merge"] as? [String: Any])?["unmerged_batches"] as? Int == 1)

        let admin = try Connection(conninfo: world.db)
        try admin.execute("UPDATE cardsync.staged_batches SET staged_at = now() - interval '10 minutes' WHERE merged_at IS NULL")
        let metrics = world.dir.path + "/status.prom"
        let behind = try CLIRunner.run(["status", "--json", "--database", world.bureauURI, "--metrics-file", metrics])
        #expect(behind.status == 2, "\(behind.stdout)\n\(behind.stderr)")
        let merge = try #require(try Self.json(behind)["merge"] as? [String: Any])
        #expect(merge["behind"] as? Bool == true)
        #expect((merge["oldest_unmerged_age_seconds"] as? Double ?? 0) >= 600)
        #expect(merge["last_merged_at"] is NSNull)
        let parsed = try PrometheusText.parse(file: metrics)
        #expect(parsed.value("cardsync_unmerged_events", ["agency": world.agency]) == 3)
        #expect(parsed.value("cardsync_unmerged_batches", [:]) == 1)
        #expect((parsed.value("cardsync_merge_lag_seconds", [:]) ?? 0) >= 600)
        #expect(parsed.value("cardsync_merge_behind", [:]) == 1)
        #expect(try CLIRunner.run(["status", "--merge-lag-after", "15m", "--database", world.bureauURI]).status == 0)
        let text = try CLIRunner.run(["status", "--database", world.bureauURI])
        #expect(text.stdout.contains("BEHIND"), "\(text.stdout)")

        // The bureau's merge catches up: nothing waits, exit 0, the merge's last activity shows.
        #expect(try CLIRunner.run(["merge", "--database", world.bureauURI]).status == 0)
        let caughtUp = try CLIRunner.run(["status", "--json", "--database", world.bureauURI, "--metrics-file", metrics])
        #expect(caughtUp.status == 0, "\(caughtUp.stdout)")
        #expect((try Self.json(caughtUp)["merge"] as? [String: Any])?["last_merged_at"] is String)
        let after = try PrometheusText.parse(file: metrics)
        #expect(after.value("cardsync_unmerged_batches", [:]) == 0)
        #expect(after.value("cardsync_merge_behind", [:]) == 0)
        #expect(after.value("cardsync_merge_last_activity_timestamp_seconds", [:]) != nil)
        #expect(after.value("cardsync_applications_open", ["agency": world.agency]) == 3)
    }

    @Test func openConflictsByKindForBothAgencies() throws {
        let world = try StagingWorld(prefix: "cardsync-status-conflicts")
        defer { world.dir.remove() }
        // The same child at two agencies: one duplicate_application naming both.
        let kept = UUID()
        for (code, app) in [("CS-FR-001", UUID()), ("CS-YL-002", kept)] {
            let queue = world.dir.path + "/" + code
            #expect(try CLIRunner.run(["queue", "init", queue, "--agency", code]).status == 0)
            #expect(try CLIRunner.run(["queue", "append", queue, "-"], stdin: Self.submittedLine(app: app, child: 7) + "\n").status == 0)
            let sync = try CLIRunner.run(["sync", queue, "--database", world.db])
            #expect(sync.status == 0, "\(sync.stderr)")
        }
        let metrics = world.dir.path + "/status.prom"
        // Conflicts are results, not a failure: exit 0 (the staging agency never synced but is new).
        let status = try CLIRunner.run(["status", "--json", "--database", world.bureauURI, "--metrics-file", metrics])
        #expect(status.status == 0, "\(status.stdout)\n\(status.stderr)")
        let doc = try Self.json(status)
        for code in ["CS-FR-001", "CS-YL-002"] {
            let conflicts = try #require(try Self.agencyRow(doc, code)["open_conflicts"] as? [String: Int])
            #expect(conflicts["duplicate_application"] == 1, "\(conflicts)")
            #expect(conflicts.values.reduce(0, +) == 1)
        }
        let parsed = try PrometheusText.parse(file: metrics)
        #expect(parsed.value("cardsync_conflicts_open", ["agency": "CS-YL-002", "kind": "duplicate_application"]) == 1)
        #expect(parsed.value("cardsync_conflicts_open", ["agency": "CS-YL-002", "kind": "pending_expired"]) == 0)
        #expect(parsed.value("cardsync_conflicts_open", ["agency": world.agency, "kind": "duplicate_application"]) == 0)
        let text = try CLIRunner.run(["status", "--database", world.bureauURI])
        #expect(text.stdout.contains("CS-FR-001 open conflicts: duplicate_application 1"), "\(text.stdout)")
        let metricsText = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(!metricsText.contains("430102") && !metricsText.contains("13812345678"))

        // Resolved, the conflict is no longer counted for either agency.
        let list = try CLIRunner.run(["conflicts", "list", "--format", "json", "--database", world.db])
        let id = try #require(((try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["conflicts"]
            as? [[String: Any]])?.first?["conflict_id"], "\(list.stdout)")
        let resolved = try CLIRunner.run(["conflicts", "resolve", "\(id)", "--keep", kept.uuidString.lowercased(), "--database", world.db])
        #expect(resolved.status == 0, "\(resolved.stderr)")
        _ = try CLIRunner.run(["status", "--database", world.bureauURI, "--metrics-file", metrics])
        #expect(try PrometheusText.parse(file: metrics).value("cardsync_conflicts_open", ["agency": "CS-FR-001", "kind": "duplicate_application"]) == 0)
    }

    @Test func anAgencyRoleCannotReadTheStatus() throws {
        let world = try StagingWorld(prefix: "cardsync-status-role")
        defer { world.dir.remove() }
        let refused = try CLIRunner.run(["status", "--database", world.agencyURI])
        #expect(refused.status == 1, "\(refused.stdout)\n\(refused.stderr)")
        #expect(refused.stderr.contains("cardsync_bureau"), "\(refused.stderr)")
    }
}

/// Distinct children for the submissions of one test process.
final class ChildNumbers: @unchecked Sendable {
    // @unchecked: `value` is guarded by `lock`.
    static let shared = ChildNumbers()
    private let lock = NSLock()
    private var value = 100

    func next() -> Int {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value
    }
}
