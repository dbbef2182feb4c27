import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// cli.md, "Who may do what": an agency's own role stages its own events and reads back only
/// what concerns its queue; the bureau's merge applies them. Every test connects with the
/// least-privileged role that really runs the step: the agency's for sync and reconcile, the
/// bureau's for the merge.
@Suite("Agency isolation")
struct AgencyIsolationTests {
    @Test("an agency's role stages; the bureau's merge applies; the next sync reports and pulls what the merge made")
    func stagedPushThenMerge() throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let script = OutboxScript(queue)
        let apps = try (0..<3).map { _ in try script.submit() }
        try script.verify(apps[0])

        let first = try w.sync(queue, as: w.roleA)
        #expect(first.staged)
        #expect(first.unmerged == 4)
        #expect(first.pushed == 0)
        #expect(try w.world.ledgerCount == 0, "nothing reaches the ledger before the bureau's merge")
        #expect(try w.world.count("SELECT sum(line_count)::int8 FROM cardsync.staged_batches WHERE merged_at IS NULL") == 4)
        // The checkpoint moved: the lines are durable centrally.
        #expect(try queue.loadCheckpoint()?.outboxLine == 4)

        let merged = try w.merge()
        #expect(merged.batches == 1)
        #expect(merged.merged.accepted == 4)
        #expect(try w.world.ledgerCount == 4)
        #expect(try w.world.count("SELECT count(*) FROM cardsync.staged_lines") == 0)

        // Merging again applies nothing twice.
        #expect(try w.merge().batches == 0)
        let second = try w.sync(queue, as: w.roleA)
        #expect(second.pushed == 4, "the merge's outcome is reported by the agency's next sync")
        #expect(second.unmerged == 0)
        let third = try w.sync(queue, as: w.roleA)
        #expect(third.pushed == 0, "and only once")
        try w.world.expectVerifyClean()
    }

    @Test("with --merge-wait the agency's sync sees its batches merged by a merge running at the same time")
    func mergeWaitSeesConcurrentMerge() throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let script = OutboxScript(queue)
        for _ in 0..<5 { try script.submit() }
        let stop = StopFlag()
        let bureau = Handoff(try w.connect(as: w.bureauRole))
        let merger = Thread {
            let m = StagedBatchMerger(connection: bureau.take(), logger: .init(label: "test.merge"))
            while !stop.isSet {
                _ = try? m.mergeAll()
                Thread.sleep(forTimeInterval: 0.02)
            }
            stop.finish()
        }
        merger.start()
        defer { stop.set(); stop.waitFinished() }
        let result = try w.sync(queue, as: w.roleA, mergeWait: .seconds(20))
        #expect(result.pushed == 5)
        #expect(result.unmerged == 0)
    }

    @Test("an agency's role cannot read, change or act for anything but its own agency, through SQL or cardsync")
    func agencyRoleRefusals() throws {
        let w = try IsolationWorld()
        // B has data: an application with a child's identity number, a delivery, a conflict.
        let queueB = try w.world.queue(w.agencyB)
        let scriptB = OutboxScript(queueB, firstChild: 500)
        let appB = try scriptB.submit()
        try w.sync(queueB, as: w.roleB)
        try w.merge()
        try w.world.db.execute("SELECT 1") // owner still fine
        _ = try BureauRecorder(connection: try w.connect(as: w.bureauRole), logger: .test)
            .record(.returned, applications: [appB], data: { _ in ["reason": "补充材料"] })
        let before = try w.world.snapshot()

        let refused: [String] = [
            "SELECT * FROM cardsync.applications",
            "SELECT child_id_number FROM cardsync.applications",
            "SELECT * FROM cardsync.ledger",
            "SELECT * FROM cardsync.deliveries",
            "SELECT * FROM cardsync.conflicts",
            "SELECT * FROM cardsync.staged_lines",
            "SELECT * FROM cardsync.staged_batches",
            "SELECT * FROM cardsync.agency_sync_state",
            "SELECT * FROM cardsync.agency_roles",
            "INSERT INTO cardsync.staged_lines VALUES (1, '{}')",
            "UPDATE cardsync.applications SET status = 'rejected'",
            "UPDATE cardsync.agencies SET name = 'x'",
            "DELETE FROM cardsync.ledger",
            "DELETE FROM cardsync.deliveries",
            "TRUNCATE cardsync.applications",
            "TRUNCATE cardsync.ledger",
            "SELECT cardsync.stage_batch(:'agency_b', 1, 1, '{}')",
            "SELECT * FROM cardsync.agency_deliveries(:'agency_b', 0, 100)",
            "SELECT * FROM cardsync.agency_events(:'agency_b')",
            "SELECT * FROM cardsync.agency_batches(:'agency_b', 0)",
            "SELECT * FROM cardsync.take_batch_results(:'agency_b')",
            "SELECT cardsync.record_pull(:'agency_b', 0)",
            "SELECT cardsync.raise_pushed_seq(:'agency_b', 999)",
            "SELECT cardsync.set_agency_credentials(:'agency_a', NULL)",
            "SELECT cardsync.analyze_lookup_columns('ledger')",
            "SELECT cardsync.act_for_agency(:'agency_b')",
            "SELECT cardsync.session_is_bureau()",
        ]
        for sql in refused {
            let run = try w.psql(sql, as: w.roleA)
            #expect(run.status != 0, "psql as agency A's role ran: \(sql)")
            #expect(run.stderr.contains("permission denied") || run.stderr.contains("may not act for agency")
                        || run.stderr.contains("belongs to agency"),
                    "unclear refusal of \(sql): \(run.stderr)")
        }
        // Through cardsync: A's role cannot sync or reconcile B's queue.
        #expect(throws: SyncError.self) { try w.sync(queueB, as: w.roleA) }
        #expect {
            try AgencyReconcile(queue: queueB, connection: try w.connect(as: w.roleA), logger: .test).run()
        } throws: { error in
            "\(error)".contains("belongs to agency \(w.agencyA.code)")
        }
        // And its own functions give it nothing of B's.
        let own = try w.connect(as: w.roleA)
        #expect(try own.query("SELECT * FROM cardsync.agency_deliveries($1, 0, 100)", [.text(w.agencyA.code)]).isEmpty)
        #expect(try own.query("SELECT * FROM cardsync.agency_events($1)", [.text(w.agencyA.code)]).isEmpty)
        #expect(try w.world.snapshot() == before, "a refused attempt changed the central state")
    }

    @Test("a staged line that fails the queue rules is refused by the merge and kept, never applied")
    func handCraftedStagingIsValidatedAgain() throws {
        let w = try IsolationWorld()
        let own = try w.connect(as: w.roleA)
        let bad = #"{"event_id":"6a1f8f7e-2b7c-4d3e-9f00-000000000001","seq":1,"type":"approved","application_id":"6a1f8f7e-2b7c-4d3e-9f00-000000000002","occurred_at":"2026-01-05T10:00:00+08:00","data":{}}"#
        let id = try StagingClient(connection: own, agency: w.agencyA.code).stage(lines: [bad, "not json"], maxSeq: 1)
        #expect(id > 0)
        let totals = try w.merge()
        #expect(totals.refused == 2)
        #expect(try w.world.ledgerCount == 0)
        #expect(try w.world.count("SELECT count(*) FROM cardsync.refused_lines WHERE batch_id = $1", [.int64(id)]) == 2)
        #expect(try w.world.count("SELECT count(*) FROM cardsync.staged_batches WHERE merged_at IS NOT NULL") == 1)
    }

    @Test("reconcile with the agency's role compares its own events through the agency functions")
    func reconcileWithAgencyRole() throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let script = OutboxScript(queue)
        for _ in 0..<3 { try script.submit() }
        try w.sync(queue, as: w.roleA)
        try w.merge()
        try w.sync(queue, as: w.roleA)
        let clean = try AgencyReconcile(queue: queue, connection: try w.connect(as: w.roleA), logger: .test).run()
        #expect(clean.eventsMissingCentrally.isEmpty)
        #expect(clean.centralEvents == 3)
    }

    @Test("db roles model: the agency group holds no table privilege but two, PUBLIC calls no definer function")
    func roleCheckIsClean() throws {
        let w = try IsolationWorld()
        let check = try RoleCheck.read(on: try w.world.db)
        #expect(check.problems.isEmpty, "\(check.problems)")
        #expect(check.agencyLogins.contains { $0.agencyCode == w.agencyA.code && $0.inAgencyGroup })
        // A grant made by hand shows up as a problem.
        try w.world.db.executeScript("GRANT SELECT ON cardsync.applications TO cardsync_agency")
        let widened = try RoleCheck.read(on: try w.world.db)
        #expect(widened.problems.contains { $0.contains("cardsync_agency may SELECT cardsync.applications") })
        try RolePrivileges.apply(on: try w.world.db)
        #expect(try RoleCheck.read(on: try w.world.db).problems.isEmpty, "db roles takes the stray grant back")
    }
}

/// The bureau's role (not the owner) runs every bureau-side command: in-process sync, decisions,
/// conflicts, reports, verify.
@Suite("Bureau role")
struct BureauRoleTests {
    @Test("a sync with a bureau role merges in-process; bureau decisions, conflicts and reports work with that role")
    func bureauRoleDoesTheBureausWork() throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let script = OutboxScript(queue)
        let app = try script.submit()
        try script.submit(child: 0) // the same child again: a duplicate_application conflict
        let result = try w.sync(queue, as: w.bureauRole)
        #expect(!result.staged)
        #expect(result.pushed == 2)
        #expect(result.conflictsOpened == 1)
        let uri = w.uri(as: w.bureauRole)
        let scratch = w.world.directory.url
        for command in [["bureau", "approve", app.lowercased], ["conflicts", "list", "--format", "json"],
                        ["report", "backlog", "--format", "json"], ["db", "verify"], ["agency", "list"]] {
            let out = try CardsyncCLI.run(command + ["--database", uri], scratch: scratch)
            #expect(out.status == 0, "\(command) as the bureau's role: \(out.stderr)")
        }
        // The merge service's role (cardsync_merge alone) may merge but not hand out credentials.
        let mergeOnly = "t_merge_" + String(UUID().uuidString.prefix(8)).lowercased()
        try w.world.db.executeScript("CREATE ROLE \(try w.world.db.escapeIdentifier(mergeOnly)) LOGIN IN ROLE cardsync_merge")
        let refused = try CardsyncCLI.run(["agency", "credentials", w.agencyA.code, "--database", w.uri(as: mergeOnly)],
                                          scratch: scratch)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("may not hand out agency credentials"), "\(refused.stderr)")
        let merged = try CardsyncCLI.run(["merge", "--database", w.uri(as: mergeOnly)], scratch: scratch)
        #expect(merged.status == 0, "\(merged.stderr)")
    }
}

/// A flag one thread sets and another polls, plus a way to wait for the poller to finish.
final class StopFlag: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    private let done = DispatchSemaphore(value: 0)
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
    func finish() { done.signal() }
    func waitFinished() { done.wait() }
}

/// `cardsync merge --follow` as the bureau's service: woken by an agency's staging, stopped by SIGTERM.
@Suite("Merge service")
struct MergeServiceTests {
    @Test("merge --follow applies what an agency's role stages while it runs, and exits 0 on SIGTERM")
    func followThenTerminate() throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let script = OutboxScript(queue)
        for _ in 0..<3 { try script.submit() }
        // A long poll interval: only the notification can wake it in time.
        let service = try CardsyncCLI.start(["merge", "--follow", "--json", "--poll-interval", "600",
                                             "--database", w.uri(as: w.bureauRole)], scratch: w.world.directory.url)
        defer { if service.process.isRunning { service.kill() } }
        // Give it time to connect and LISTEN; a staging before that is merged by its first round anyway.
        Thread.sleep(forTimeInterval: 1)
        let first = try w.sync(queue, as: w.roleA, mergeWait: .seconds(30))
        #expect(first.pushed == 3, "merged while the sync waited")
        #expect(first.unmerged == 0)
        for _ in 0..<2 { try script.submit() }
        let second = try w.sync(queue, as: w.roleA, mergeWait: .seconds(30))
        #expect(second.pushed == 2)
        service.process.terminate()
        let out = service.wait()
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(!out.signaled)
        let totals = try JSONParser.parse(Array(out.stdout.utf8))
        #expect(totals["batches"]?.intValue == 2)
        #expect(totals["accepted"]?.intValue == 5)
        try w.world.expectVerifyClean()
    }

    @Test("merge refuses an agency's role with a message naming the roles that may")
    func agencyRoleCannotMerge() throws {
        let w = try IsolationWorld()
        let out = try CardsyncCLI.run(["merge", "--database", w.uri(as: w.roleA)], scratch: w.world.directory.url)
        #expect(out.status == 1)
        #expect(out.stderr.contains("only the bureau merges"), "\(out.stderr)")
        #expect(out.stderr.contains("cardsync_merge"))
    }
}
