import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// The staged push (an agency's own role stages, the bureau's `cardsync merge` applies) killed
// at each of its crash points (`CrashPoint`, CARDSYNC_CRASH_AT) and run again: the centre, the
// inbox and the quarantine end exactly where an uninterrupted staged sync + merge ends, every
// staged batch is merged exactly once and no event is in the ledger twice.

// MARK: - Running the real executable with a crash point

/// Runs the `cardsync` executable, optionally with `CARDSYNC_CRASH_AT` set.
enum StagedCLI {
    static func run(_ arguments: [String], scratch: URL, crashAt: String? = nil) throws -> CardsyncCLI.Output {
        try CardsyncCLI.run(arguments, scratch: scratch, environment: crashAt.map { ["CARDSYNC_CRASH_AT": $0] } ?? [:])
    }
}

// MARK: - A central database with the agency's and the bureau's roles

/// A fresh SyncWorld with `agency` registered, its own login role (server-wide, shared by every
/// world of that agency code), a bureau login role unique to this world, and optionally the
/// bureau's decisions imported as the owner.
final class StagedRoleWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let world: SyncWorld
    let agency: Agency
    let agencyRole: String
    let bureauRole: String

    init(agency: Agency, decisions: URL? = nil) throws {
        world = try SyncWorld()
        self.agency = agency
        try world.register(agency)
        agencyRole = try Self.rotate(agency.code, on: try world.db)
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10)).lowercased()
        bureauRole = "t_sbureau_\(tag)"
        try world.db.executeScript("CREATE ROLE \(try world.db.escapeIdentifier(bureauRole)) LOGIN IN ROLE cardsync_bureau")
        if let decisions {
            let report = try BureauRecorder(connection: try world.db, logger: .test).importFile(decisions)
            guard report.refused.isEmpty else { throw SyncError("bureau lines refused: \(report.refused.count)") }
        }
    }

    /// `rotateCredentials`, retried when another test rotates the same (server-wide) role at
    /// the same moment ("tuple concurrently updated").
    static func rotate(_ code: String, on connection: Connection) throws -> String {
        var attempt = 0
        while true {
            do {
                return try AgencyRegistry(connection: connection).rotateCredentials(code).role
            } catch let error as PostgresError where attempt < 20 && "\(error)".contains("concurrently") {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// The world's URI logging in as `role` (the test cluster trusts its Unix socket).
    func uri(as role: String) -> String {
        precondition(world.uri.contains("&user=postgres"))
        return world.uri.replacingOccurrences(of: "&user=postgres", with: "&user=\(role)")
    }

    var agencyURI: String { uri(as: agencyRole) }
    var bureauURI: String { uri(as: bureauRole) }

    /// What `staged_batches` says: batches, unmerged ones, and the merge's outcome sums.
    struct Batches: Equatable, CustomStringConvertible {
        var total = 0
        var unmerged = 0
        var accepted = 0
        var alreadyPresent = 0
        var refused = 0
        var lines = 0
        /// Lines of the last batch staged.
        var lastLines = 0
        var description: String {
            "batches \(total) (unmerged \(unmerged)), lines \(lines) (last batch \(lastLines)): accepted \(accepted), already present \(alreadyPresent), refused \(refused)"
        }
    }

    func batches() throws -> Batches {
        let row = try world.db.query("""
            SELECT count(*)::int8 AS total, count(*) FILTER (WHERE merged_at IS NULL)::int8 AS unmerged,
                   coalesce(sum(accepted), 0)::int8 AS accepted, coalesce(sum(already_present), 0)::int8 AS already_present,
                   coalesce(sum(refused), 0)::int8 AS refused, coalesce(sum(line_count), 0)::int8 AS lines,
                   coalesce((SELECT line_count FROM cardsync.staged_batches ORDER BY batch_id DESC LIMIT 1), 0)::int8 AS last_lines
            FROM cardsync.staged_batches
            """)[0]
        func int(_ column: String) throws -> Int { Int(try row.decode(Int64.self, column: column)) }
        return Batches(total: try int("total"), unmerged: try int("unmerged"), accepted: try int("accepted"),
                       alreadyPresent: try int("already_present"), refused: try int("refused"), lines: try int("lines"),
                       lastLines: try int("last_lines"))
    }
}

// MARK: - The suite

@Suite("Staged push crash safety", .serialized)
struct StagedCrashTests {
    /// A generated queue (faulty lines included) and the bureau's decisions for it, with the
    /// result of one uninterrupted staged run: sync with the agency's role, merge with the
    /// bureau's, a final sync to pull.
    final class StagedWorkload: Sendable {
        let directory: TemporaryDirectory
        let queue: QueueDirectory
        let agency: Agency
        let decisions: URL
        let reference: CentralSnapshot
        let referenceInbox: [String]
        let referenceQuarantine: [String]
        let referenceBatches: StagedRoleWorld.Batches
        let referenceAgencyEvents: Int

        static let shared = Result { try StagedWorkload() }

        init() throws {
            directory = try TemporaryDirectory.untilExit(prefix: "cardsync-staged-kill")
            (queue, decisions) = try CardsyncCLI.generateOneQueue(in: directory.url, seed: "20261207")
            agency = try queue.readAgency()

            let w = try StagedRoleWorld(agency: agency, decisions: decisions)
            let copy = try QueueFiles.copy(queue, to: w.world.path("reference"))
            let scratch = w.world.directory.url
            for (step, arguments) in [("sync", StagedCrashTests.syncArguments(copy, w)), ("merge", StagedCrashTests.mergeArguments(w)),
                                      ("final sync", StagedCrashTests.syncArguments(copy, w))] {
                let run = try StagedCLI.run(arguments, scratch: scratch)
                guard run.status == 0 else { throw SyncError("the reference \(step) failed: \(run.stderr)") }
            }
            reference = try w.world.snapshot()
            referenceInbox = try QueueFiles.inbox(copy).map(QueueFiles.normalized)
            referenceQuarantine = try QueueFiles.quarantineSummary(copy)
            referenceBatches = try w.batches()
            referenceAgencyEvents = try w.world.count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'")
        }
    }

    static func syncArguments(_ queue: QueueDirectory, _ w: StagedRoleWorld) -> [String] {
        // --wait: a killed sync's session (and its agency lock) may linger a moment on the server.
        ["sync", queue.path, "--database", w.agencyURI, "--batch-size", "7", "--merge-wait", "0", "--wait", "30"]
    }

    /// Lines in the queue's outbox.
    static func outboxLineCount(_ queue: QueueDirectory) throws -> Int {
        QueueFiles.bytes(queue.outboxFile).filter { $0 == 0x0A }.count
    }

    static func mergeArguments(_ w: StagedRoleWorld) -> [String] {
        ["merge", "--database", w.bureauURI]
    }

    /// One interrupted run: the sync killed at `sync`, or the merge killed at `merge`, or both.
    struct CrashCase: Sendable, CustomTestStringConvertible {
        var sync: String?
        var merge: String?
        /// After the killed sync, the bureau's merge runs before the sync is run again (as a
        /// merge service would), so that the sync re-stages on top of merged batches.
        var mergeBeforeRerun = false

        var testDescription: String {
            [sync.map { "sync killed at \($0)" }, merge.map { "merge killed at \($0)" },
             mergeBeforeRerun ? "merged before the rerun" : nil].compactMap { $0 }.joined(separator: ", ")
        }
    }

    static let crashCases: [CrashCase] =
        ["before-stage", "after-stage", "after-checkpoint"].flatMap { point in
            [1, 2, 5].map { n in CrashCase(sync: "\(point):\(n)", mergeBeforeRerun: n == 2) }
        }
        + ["merge-before-commit", "merge-between-commits", "merge-after-commit"].flatMap { point in
            [1, 2, 5].map { n in CrashCase(merge: "\(point):\(n)") }
        }
        + [CrashCase(sync: "after-stage:3", merge: "merge-between-commits:2")]

    @Test("the uninterrupted staged run ends where an in-process sync of the same queue ends")
    func stagedMatchesInProcess() throws {
        let workload = try StagedWorkload.shared.get()
        #expect(workload.reference.ledger.count > 300, "the workload has a few hundred events")
        #expect(!workload.referenceInbox.isEmpty && !workload.referenceQuarantine.isEmpty)
        #expect(workload.referenceBatches.unmerged == 0)
        #expect(workload.referenceBatches.lines + workload.referenceQuarantine.count == (try Self.outboxLineCount(workload.queue)),
                "every outbox line is staged once or quarantined")
        #expect(workload.referenceBatches.refused == 0)
        #expect(workload.referenceBatches.accepted == workload.referenceAgencyEvents)

        let w = try StagedRoleWorld(agency: workload.agency, decisions: workload.decisions)
        let queue = try QueueFiles.copy(workload.queue, to: w.world.path("in-process"))
        let run = try StagedCLI.run(["sync", queue.path, "--database", w.world.uri, "--batch-size", "7"],
                                    scratch: w.world.directory.url)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let snapshot = try w.world.snapshot()
        #expect(snapshot == workload.reference, "differences: \(snapshot.differences(from: workload.reference))")
        #expect(try QueueFiles.inbox(queue).map(QueueFiles.normalized) == workload.referenceInbox)
        #expect(try QueueFiles.quarantineSummary(queue) == workload.referenceQuarantine)
    }

    @Test("a staged sync or merge killed at a crash point and run again ends exactly where the uninterrupted run ends",
          arguments: crashCases)
    func killedAndRunAgain(crash: CrashCase) throws {
        let workload = try StagedWorkload.shared.get()
        let w = try StagedRoleWorld(agency: workload.agency, decisions: workload.decisions)
        let queue = try QueueFiles.copy(workload.queue, to: w.world.path("queue"))
        let scratch = w.world.directory.url
        let sync = Self.syncArguments(queue, w)
        let merge = Self.mergeArguments(w)

        func expectFinished(_ output: CardsyncCLI.Output, _ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(!output.signaled && output.status == 0, "\(step): status \(output.status), stderr: \(output.stderr)",
                    sourceLocation: sourceLocation)
        }
        func expectKilled(_ output: CardsyncCLI.Output, _ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(output.signaled && output.status == SIGKILL,
                    "\(step) was not killed: status \(output.status), stderr: \(output.stderr)", sourceLocation: sourceLocation)
        }

        // The interrupted steps.
        var stagedByKilledSync = StagedRoleWorld.Batches()
        if let point = crash.sync {
            expectKilled(try StagedCLI.run(sync, scratch: scratch, crashAt: point), "sync at \(point)")
            let staged = try w.batches()
            stagedByKilledSync = staged
            #expect(staged.unmerged == staged.total, "nothing merges before the bureau's merge runs")
            #expect(try w.world.count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'") == 0)
            if crash.mergeBeforeRerun {
                expectFinished(try StagedCLI.run(merge, scratch: scratch), "merge of what the killed sync staged")
            }
        } else {
            expectFinished(try StagedCLI.run(sync, scratch: scratch), "sync")
        }
        if let point = crash.merge {
            let before = try w.batches()
            expectKilled(try StagedCLI.run(merge, scratch: scratch, crashAt: point), "merge at \(point)")
            let after = try w.batches()
            #expect(after.unmerged > 0, "the killed merge left batches to merge: \(after)")
            #expect(after.unmerged < before.unmerged || point.hasPrefix("merge-before-commit"),
                    "a merge killed after a commit leaves its batch merged: before \(before), after \(after)")
        }

        // Run again without the crash point: sync and merge until nothing is staged, then a final
        // sync to pull.
        var rounds = 0
        repeat {
            rounds += 1
            expectFinished(try StagedCLI.run(sync, scratch: scratch), "sync of round \(rounds)")
            expectFinished(try StagedCLI.run(merge, scratch: scratch), "merge of round \(rounds)")
        } while try w.batches().unmerged > 0 && rounds < 4
        expectFinished(try StagedCLI.run(sync, scratch: scratch), "final sync")

        // The centre, the inbox and the quarantine: as the uninterrupted run left them.
        let snapshot = try w.world.snapshot()
        #expect(snapshot == workload.reference, "differences: \(snapshot.differences(from: workload.reference))")
        let inbox = try QueueFiles.inbox(queue)
        QueueFiles.expectNoDuplicates(inbox)
        #expect(inbox.map(QueueFiles.normalized) == workload.referenceInbox)
        #expect(try QueueFiles.quarantineSummary(queue) == workload.referenceQuarantine)
        try w.world.expectVerifyClean()

        // Every staged batch merged exactly once; every event in the ledger once.
        #expect(try w.world.count("SELECT count(*) FROM cardsync.staged_lines") == 0, "no staged line left")
        #expect(try w.world.count("SELECT count(*) FROM cardsync.refused_lines") == 0)
        let batches = try w.batches()
        #expect(batches.unmerged == 0, "\(batches)")
        #expect(batches.refused == 0)
        #expect(batches.accepted == workload.referenceBatches.accepted,
                "the merges accepted each event once: \(batches) vs reference \(workload.referenceBatches)")
        #expect(batches.accepted == (try w.world.count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'")))
        // Lines are staged twice only after a kill between staging a batch and the checkpoint:
        // exactly that batch's lines, again (the rerun's batches may be cut differently).
        let stagedTwice = crash.sync?.hasPrefix("after-stage") == true ? stagedByKilledSync.lastLines : 0
        if crash.sync?.hasPrefix("after-stage") == true { #expect(stagedTwice > 0, "the killed sync had staged a batch") }
        #expect(batches.lines == workload.referenceBatches.lines + stagedTwice, "\(batches) vs reference \(workload.referenceBatches)")
        if crash.sync == nil { #expect(batches.total == workload.referenceBatches.total, "a killed merge stages nothing") }
        #expect(batches.alreadyPresent == workload.referenceBatches.alreadyPresent + (batches.lines - workload.referenceBatches.lines),
                "the re-staged batch's lines are all already present")
        #expect(try w.world.count("SELECT count(*) - count(DISTINCT event_id) FROM cardsync.ledger") == 0)

        // And nothing is left to do.
        let verify = try StagedCLI.run(["db", "verify", "--database", w.world.uri], scratch: scratch)
        expectFinished(verify, "db verify")
        var options = SyncOptions()
        options.mergeWait = .zero
        let settled = try AgencySync(queue: queue, connection: try Connection(conninfo: w.agencyURI), options: options, logger: .test).run()
        #expect(settled.pushed == 0 && settled.pulled == 0 && settled.quarantined == 0 && settled.unmerged == 0)
        #expect(try w.batches().total == batches.total, "a settled sync stages nothing")
    }
}
