import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// "An interrupted command (Ctrl-C, kill, power loss) leaves nothing half-done: running it again
/// finishes the work with no event lost and none applied twice" (../shared/spec/cli.md), and the
/// same for a central database restored from a backup or lost mid-sync.
@Suite("Sync crash safety")
struct SyncCrashTests {
    // MARK: Killed at many points

    /// A generated queue of a few hundred events (faulty lines included), the bureau's decisions
    /// for it, and the result of one uninterrupted run, shared by the kill cases.
    final class KillWorkload: Sendable {
        let directory: TemporaryDirectory
        let queue: QueueDirectory
        let agency: Agency
        let decisions: URL
        let reference: CentralSnapshot
        let referenceInbox: [String]
        let referenceQuarantine: [String]
        /// How long the uninterrupted `cardsync sync` took, process start to exit.
        let seconds: Double

        static let shared = Result { try KillWorkload() }

        init() throws {
            directory = try TemporaryDirectory.untilExit(prefix: "cardsync-kill")
            (queue, decisions) = try CardsyncCLI.generateOneQueue(in: directory.url, seed: "20261125")
            agency = try queue.readAgency()

            let world = try Self.prepare(self.queue, agency: agency, decisions: decisions)
            let copy = try QueueFiles.copy(queue, to: world.path("reference"))
            let started = ContinuousClock.now
            let run = try CardsyncCLI.run(["sync", copy.path, "--database", world.uri, "--batch-size", "7"],
                                          scratch: world.directory.url)
            seconds = (ContinuousClock.now - started).seconds
            guard run.status == 0 else { throw SyncError("the reference sync failed: \(run.stderr)") }
            reference = try world.snapshot()
            referenceInbox = try QueueFiles.inbox(copy).map(QueueFiles.normalized)
            referenceQuarantine = try QueueFiles.quarantineSummary(copy)
        }

        /// A fresh database with the agency registered and the bureau's decisions imported
        /// (they wait as pending until the applications arrive).
        static func prepare(_ queue: QueueDirectory, agency: Agency, decisions: URL) throws -> SyncWorld {
            let world = try SyncWorld()
            try world.register(agency)
            let report = try BureauRecorder(connection: try world.db, logger: .test).importFile(decisions)
            guard report.refused.isEmpty else { throw SyncError("bureau lines refused: \(report.refused.count)") }
            return world
        }
    }

    /// Where a run is killed. Delays alone land unevenly when the machine is busy, so most
    /// points wait for observed progress: central ledger rows committed by this run, the first
    /// checkpoint, the first inbox bytes. The process goes on working while the test notices,
    /// so each point is a neighbourhood, not an exact instruction.
    enum KillPoint: Sendable, CustomTestStringConvertible {
        /// After this many seconds.
        case delay(Double)
        /// Once this share of the outbox's events is in the ledger (0 = the first batch committed).
        case pushed(Double)
        /// Once state.json exists (the first checkpoint).
        case firstCheckpoint
        /// Once inbox.jsonl has any bytes (while pulling).
        case inboxWritten
        /// Killed `times` runs in a row, each once it has committed `rows` more ledger rows.
        case repeatedly(times: Int, rows: Int)

        var testDescription: String {
            switch self {
            case .delay(let s): "after \(s) s"
            case .pushed(let share): "once \(Int(share * 100))% is pushed"
            case .firstCheckpoint: "after the first checkpoint"
            case .inboxWritten: "while pulling"
            case .repeatedly(let times, let rows): "\(times) times, every \(rows) rows"
            }
        }
    }

    static let killPoints: [KillPoint] = [
        .delay(0), .delay(0.05), .delay(0.15), .firstCheckpoint,
        .pushed(0), .pushed(0.1), .pushed(0.2), .pushed(0.3), .pushed(0.45), .pushed(0.6), .pushed(0.75), .pushed(0.9),
        .pushed(1), .inboxWritten, .inboxWritten, .repeatedly(times: 4, rows: 25), .repeatedly(times: 3, rows: 60),
    ]

    @Test("a sync killed at any point and run again ends exactly where an uninterrupted sync ends",
          arguments: killPoints)
    func killAtManyPoints(point: KillPoint) throws {
        let workload = try KillWorkload.shared.get()
        #expect(workload.reference.ledger.count > 300, "the workload has a few hundred events")
        #expect(!workload.referenceInbox.isEmpty && !workload.referenceQuarantine.isEmpty)
        let world = try KillWorkload.prepare(workload.queue, agency: workload.agency, decisions: workload.decisions)
        let queue = try QueueFiles.copy(workload.queue, to: world.path("queue"))
        let arguments = ["sync", queue.path, "--database", world.uri, "--batch-size", "7"]
        let before = try world.ledgerCount
        let toPush = workload.reference.ledger.count + workload.reference.systemEvents.count - before

        var runs = 1
        var killed = 0
        if case .repeatedly(let times, _) = point { runs = times }
        for _ in 0..<runs {
            let running = try CardsyncCLI.start(arguments, scratch: world.directory.url)
            let runStart = try world.ledgerCount
            let deadline = ContinuousClock.now + .seconds(60)
            func reached() throws -> Bool {
                switch point {
                case .delay(let seconds):
                    Thread.sleep(forTimeInterval: seconds)
                    return true
                case .pushed(let share):
                    return try world.ledgerCount > before + Int(share * Double(toPush - 1))
                case .firstCheckpoint:
                    return FileManager.default.fileExists(atPath: queue.stateFile.path)
                case .inboxWritten:
                    return !QueueFiles.bytes(queue.inboxFile).isEmpty
                case .repeatedly(_, let rows):
                    return try world.ledgerCount >= runStart + rows
                }
            }
            while running.process.isRunning, ContinuousClock.now < deadline, !(try reached()) {
                Thread.sleep(forTimeInterval: 0.001)
            }
            running.kill()
            let output = running.wait()
            if output.signaled { killed += 1 } else { #expect(output.status == 0, "stderr: \(output.stderr)") }
        }
        switch point {
        case .delay, .firstCheckpoint, .repeatedly, .pushed(0):
            #expect(killed == runs, "every run was killed before it finished")
        default:
            break
        }

        let final = try CardsyncCLI.run(arguments, scratch: world.directory.url)
        #expect(final.status == 0, "stderr: \(final.stderr)")

        let snapshot = try world.snapshot()
        #expect(snapshot == workload.reference, "differences: \(snapshot.differences(from: workload.reference))")
        let inbox = try QueueFiles.inbox(queue)
        QueueFiles.expectNoDuplicates(inbox)
        #expect(inbox.map(QueueFiles.normalized) == workload.referenceInbox)
        #expect(try QueueFiles.quarantineSummary(queue) == workload.referenceQuarantine)

        let verify = try CardsyncCLI.run(["db", "verify", "--database", world.uri], scratch: world.directory.url)
        #expect(verify.status == 0, "db verify: \(verify.stdout) \(verify.stderr)")
        let settled = try world.sync(queue)
        #expect(settled.pushed == 0 && settled.pulled == 0 && settled.quarantined == 0)
    }

    // MARK: Central restore

    @Test("a central database restored from an older backup gets the lost events pushed again: nothing lost, the inbox not duplicated")
    func centralRestore() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let apps = try (0..<10).map { _ in try outbox.submit() }
        for app in apps.prefix(5) { try outbox.verify(app) }
        try outbox.appendRaw(Array("not json before the backup".utf8))
        let beforeBackup = outbox.lines.count
        try world.sync(queue, batchSize: 4)
        let approvals = world.path("approvals.jsonl")
        try SyncFixture.writeLines(apps.prefix(5).map { SyncFixture.decision(.approved, app: $0, at: SyncFixture.at(minutes: 300)) },
                                   to: approvals)
        try world.importBureau(approvals)
        #expect(try world.sync(queue).pulled == 5)

        // The backup (a template copy, taken while nobody is connected).
        let admin = try Connection(conninfo: try TestDatabase.cluster().connectionURI(database: "postgres"))
        let original = try admin.escapeIdentifier(world.databaseName)
        let backup = try admin.escapeIdentifier(world.databaseName + "_backup")
        world.disconnect()
        try admin.executeScript("CREATE DATABASE \(backup) TEMPLATE \(original)")

        // Work after the backup: more events, and a decision that the restore will lose.
        let more = try (0..<5).map { _ in try outbox.submit() }
        for app in apps[5...] { try outbox.verify(app) }
        try outbox.amend(apps[6], baseVersion: 2, phone: "13900001111")
        try outbox.withdraw(more[4])
        try outbox.appendRaw(Array("not json after the backup".utf8))
        let afterBackup = outbox.lines.count - beforeBackup - 1
        let pushed = try world.sync(queue, batchSize: 4)
        #expect(pushed.pushed == afterBackup)
        let lost = world.path("lost.jsonl")
        try SyncFixture.writeLines([SyncFixture.decision(.cardProduced, app: apps[1], at: SyncFixture.at(minutes: 400),
                                                         data: ["card_number": "A20000001"])], to: lost)
        try world.importBureau(lost)
        #expect(try world.sync(queue).pulled == 1)
        let inboxBeforeRestore = try QueueFiles.inbox(queue)

        // The restore, and a decision recorded in the restored centre before the agency syncs.
        world.disconnect()
        try admin.executeScript("DROP DATABASE \(original) WITH (FORCE)")
        try admin.executeScript("CREATE DATABASE \(original) TEMPLATE \(backup)")
        try admin.executeScript("DROP DATABASE \(backup)")
        #expect(try world.ledgerCount == 10 + 5 + 5)
        let afterRestore = world.path("after-restore.jsonl")
        try SyncFixture.writeLines([SyncFixture.decision(.cardProduced, app: apps[2], at: SyncFixture.at(minutes: 500),
                                                         data: ["card_number": "A20000002"])], to: afterRestore)
        try world.importBureau(afterRestore)

        let resync = try world.sync(queue, batchSize: 3)
        #expect(resync.pushed == afterBackup, "every event the restore lost is pushed again")
        #expect(resync.repushedAfterRestore == afterBackup)
        #expect(resync.quarantined == 0, "lines quarantined before are not quarantined again")
        #expect(resync.pulled == 1)
        let inbox = try QueueFiles.inbox(queue)
        QueueFiles.expectNoDuplicates(inbox)
        #expect(inbox.count == inboxBeforeRestore.count + 1)
        #expect(Array(inbox.prefix(inboxBeforeRestore.count)) == inboxBeforeRestore, "the inbox is only appended to")
        #expect(inbox.last?.applicationID == apps[2] && inbox.last?.type == .cardProduced)
        let settled = try world.sync(queue)
        #expect(settled.pushed == 0 && settled.pulled == 0 && settled.quarantined == 0)
        try world.expectVerifyClean()

        // The same history without the backup and the lost decision.
        let reference = try SyncWorld()
        let referenceQueue = try reference.queue()
        let referenceOutbox = OutboxScript(referenceQueue)
        for line in outbox.lines.prefix(beforeBackup) { try referenceOutbox.appendRaw(line) }
        try reference.sync(referenceQueue, batchSize: 4)
        try reference.importBureau(approvals)
        try reference.importBureau(afterRestore)
        for line in outbox.lines.dropFirst(beforeBackup) { try referenceOutbox.appendRaw(line) }
        try reference.sync(referenceQueue, batchSize: 4)
        let expected = try reference.snapshot()
        let actual = try world.snapshot()
        #expect(actual == expected, "differences: \(actual.differences(from: expected))")
        let lostLine = inboxBeforeRestore.last.map(QueueFiles.normalized)
        #expect(inbox.map(QueueFiles.normalized).filter { $0 != lostLine }
            == (try QueueFiles.inbox(referenceQueue)).map(QueueFiles.normalized))
        #expect(try QueueFiles.quarantineSummary(queue) == (try QueueFiles.quarantineSummary(referenceQueue)))
    }

    // MARK: A restored queue

    @Test("a queue restored from an older backup whose outbox then grows again: the new events reach the centre, the old ones are already present",
          arguments: [true, false])
    func restoredQueue(withOlderCheckpoint: Bool) throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<6 { try outbox.submit() }
        let backupOutbox = QueueFiles.bytes(queue.outboxFile)
        try world.sync(queue)
        let backupState = QueueFiles.bytes(queue.stateFile)
        for _ in 0..<4 { try outbox.submit() }      // seq 7...10, synced, then lost with the agency's disk
        #expect(try world.sync(queue).pushed == 4)

        // The agency restores its queue from the backup and goes on recording: seq 7... again,
        // with new events. Without a checkpoint, as the outbox_truncated message suggests, or
        // with the checkpoint of the backup.
        try Data(backupOutbox).write(to: queue.outboxFile)
        if withOlderCheckpoint {
            try Data(backupState).write(to: queue.stateFile)
        } else {
            try FileManager.default.removeItem(at: queue.stateFile)
        }
        let restored = OutboxScript(queue, firstChild: 500)
        restored.skipSeq(to: 6)
        let new = try (0..<3).map { _ in try restored.submit() }

        let result = try world.sync(queue)
        #expect(result.pushed == 3, "events recorded after the restore are new, whatever their seq")
        #expect(result.alreadyPresent == (withOlderCheckpoint ? 0 : 6))
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE application_id = ANY($1::uuid[])",
                                [.uuidArray(new)]) == 3)
        #expect(try world.ledgerCount == 13)
        try world.expectVerifyClean()
    }

    // MARK: Pull exactly once

    @Test("bureau decisions appear in inbox.jsonl once each, in the centre's order, also after a crash between the inbox append and the checkpoint")
    func pullExactlyOnce() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let other = try world.queue(Agency(code: "CS-YL-002", name: "岳麓区社保卡服务网点", district: "岳麓区"))
        let outbox = OutboxScript(queue)
        let apps = try (0..<4).map { _ in try outbox.submit() }
        try world.sync(queue)
        try world.sync(other)
        let bureau = BureauRecorder(connection: try world.db, logger: .test)
        _ = try bureau.record(.approved, applications: Array(apps.prefix(3))) { _ in [:] }
        let beforePull = QueueFiles.bytes(queue.stateFile)
        #expect(try world.sync(queue).pulled == 3)
        #expect(try QueueFiles.inbox(queue).count == 3)

        // Killed after the inbox append, before the checkpoint: state.json is the older one.
        try Data(beforePull).write(to: queue.stateFile)
        _ = try bureau.record(.cardProduced, applications: [apps[0]]) { _ in ["card_number": "A30000001"] }
        _ = try bureau.record(.cardDispatched, applications: [apps[0]]) { _ in ["agency_code": "CS-YL-002"] }
        try world.sync(queue)
        try expectInboxMatchesDeliveries(world, queue, count: 5)
        try world.sync(other)
        try expectInboxMatchesDeliveries(world, other, count: 1)

        // Killed in the middle of writing a line, with the older checkpoint.
        let beforeReject = QueueFiles.bytes(queue.stateFile)
        _ = try bureau.record(.rejected, applications: [apps[3]]) { _ in ["reason": "照片不合格"] }
        #expect(try world.sync(queue).pulled == 1)
        try Data(beforeReject).write(to: queue.stateFile)
        let torn = QueueFiles.bytes(queue.inboxFile).suffix(40)
        let handle = try FileHandle(forWritingTo: queue.inboxFile)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(torn.prefix(25)))
        try handle.close()
        try world.sync(queue)
        try expectInboxMatchesDeliveries(world, queue, count: 6)

        // The checkpoint lost altogether.
        let inbox = QueueFiles.bytes(queue.inboxFile)
        try FileManager.default.removeItem(at: queue.stateFile)
        try world.sync(queue)
        #expect(QueueFiles.bytes(queue.inboxFile) == inbox)
        try expectInboxMatchesDeliveries(world, queue, count: 6)
        try world.expectVerifyClean()
    }

    /// The inbox holds exactly the centre's deliveries to this agency, in delivery order, once each.
    private func expectInboxMatchesDeliveries(_ world: SyncWorld, _ queue: QueueDirectory, count: Int,
                                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let agency = try queue.readAgency().code
        let delivered = try world.texts("""
            SELECT l.event_id::text FROM cardsync.deliveries d JOIN cardsync.ledger l USING (ledger_id)
            WHERE d.agency_code = $1 ORDER BY d.delivery_id
            """, [.text(agency)])
        let inbox = try QueueFiles.inbox(queue)
        QueueFiles.expectNoDuplicates(inbox, sourceLocation: sourceLocation)
        #expect(delivered.count == count, sourceLocation: sourceLocation)
        #expect(inbox.map(\.eventID.lowercased) == delivered, sourceLocation: sourceLocation)
        let size = Int64(QueueFiles.bytes(queue.inboxFile).count)
        #expect(try queue.loadCheckpoint()?.inboxSize == size, "the checkpoint covers the whole inbox", sourceLocation: sourceLocation)
    }

    // MARK: The database goes away

    @Test("a database that goes away mid-sync makes sync exit 1 with a clear message; the next run completes")
    func databaseGoesAwayMidSync() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let apps = try (0..<30).map { _ in try outbox.submit() }
        for app in apps.prefix(10) { try outbox.verify(app) }
        let arguments = ["sync", queue.path, "--database", world.uri, "--batch-size", "7"]

        // The sync waits for the merge lock inside its first batch; its session is then ended
        // from another connection, as a server restart or an operator would.
        let first = try runWhileTerminatingItsSession(world, arguments)
        #expect(first.status == 1)
        #expect(first.stderr.contains("Error: \(queue.path)"), "stderr: \(first.stderr)")
        #expect(first.stderr.contains("terminating connection") || first.stderr.contains("connection"),
                "the message names the lost connection: \(first.stderr)")
        #expect(try world.ledgerCount == 0, "nothing half-done")

        // With --retry the next run survives the same thing and finishes the work.
        let second = try runWhileTerminatingItsSession(world, arguments + ["--retry", "3"])
        #expect(second.status == 0, "stderr: \(second.stderr)")
        #expect(try world.ledgerCount == 40)

        let reference = try SyncWorld()
        try reference.sync(try QueueFiles.copy(queue, to: reference.path("copy")).resetSyncFiles())
        let expected = try reference.snapshot()
        let actual = try world.snapshot()
        #expect(actual == expected, "differences: \(actual.differences(from: expected))")
        let settled = try world.sync(queue)
        #expect(settled.pushed == 0)
        try world.expectVerifyClean()
    }

    /// Starts `cardsync` while holding the merge lock, ends the session that waits for it, then
    /// lets go of the lock and returns what the command did.
    private func runWhileTerminatingItsSession(_ world: SyncWorld, _ arguments: [String]) throws -> CardsyncCLI.Output {
        let blocker = try world.connect()
        try blocker.execute("SELECT pg_advisory_lock($1)", [.int64(MergeLocks.merge)])
        let running = try CardsyncCLI.start(arguments, scratch: world.directory.url)
        let deadline = ContinuousClock.now + .seconds(20)
        var terminated = false
        while !terminated && ContinuousClock.now < deadline && running.process.isRunning {
            let rows = try blocker.query("""
                SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND wait_event_type = 'Lock' AND wait_event = 'advisory'
                """)
            terminated = try rows.contains { try $0.decode(Bool.self, column: "done") }
            if !terminated { Thread.sleep(forTimeInterval: 0.02) }
        }
        #expect(terminated, "the sync never waited for the merge lock")
        try blocker.execute("SELECT pg_advisory_unlock($1)", [.int64(MergeLocks.merge)])
        return running.wait()
    }

    @Test("an unreachable database makes sync exit 1 naming the cause and what to do, without the password")
    func unreachableDatabase() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        try OutboxScript(queue).submit()
        let query = world.uri.drop { $0 != "?" }
        let wrong = "postgresql://postgres:s3cret-pw@/cardsync_no_such_database" + query
        let run = try CardsyncCLI.run(["sync", queue.path, "--database", wrong], scratch: world.directory.url)
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot use the central database"), "stderr: \(run.stderr)")
        #expect(run.stderr.contains("cardsync_no_such_database"))
        #expect(run.stderr.contains("What to do"))
        #expect(!run.stderr.contains("s3cret-pw") && !run.stdout.contains("s3cret-pw"), "the password is never printed")
        #expect(!FileManager.default.fileExists(atPath: queue.stateFile.path), "the queue is untouched")

        let next = try CardsyncCLI.run(["sync", queue.path, "--database", world.uri], scratch: world.directory.url)
        #expect(next.status == 0, "stderr: \(next.stderr)")
        #expect(try world.ledgerCount == 1)
    }
}

extension QueueDirectory {
    /// The same queue with its sync-owned files removed (a copy to sync from the start).
    func resetSyncFiles() throws -> QueueDirectory {
        for file in [inboxFile, quarantineFile, stateFile] where FileManager.default.fileExists(atPath: file.path) {
            try FileManager.default.removeItem(at: file)
        }
        return self
    }
}
