import CardCore
import CardDatabase
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// Syncs that run at the same time: of one agency (they exclude each other) and of many
/// agencies with submissions of the same child (exactly one open application survives).
@Suite("Concurrent syncs")
struct SyncConcurrencyTests {
    // MARK: One agency, twice at once

    @Test("a second sync of a queue whose lock is held fails at once with the lock message, or waits for it with --wait")
    func secondSyncOfOneQueue() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<12 { try outbox.submit() }

        let held = try QueueLock.acquire(queue)
        let refused = try CardsyncCLI.run(["sync", queue.path, "--database", world.uri], scratch: world.directory.url)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("another cardsync sync holds the queue lock for \(queue.path)"), "stderr: \(refused.stderr)")
        #expect(refused.stderr.contains("wait for it to finish, then run the command again"))
        #expect(try world.ledgerCount == 0)
        #expect(!FileManager.default.fileExists(atPath: queue.stateFile.path))

        let waiting = try CardsyncCLI.start(["sync", queue.path, "--database", world.uri, "--wait", "30", "--json"],
                                            scratch: world.directory.url)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(waiting.process.isRunning, "--wait waits for the lock")
        #expect(try world.ledgerCount == 0)
        held.release()
        let waited = waiting.wait()
        #expect(waited.status == 0, "stderr: \(waited.stderr)")
        #expect((try JSONParser.parse(waited.stdout))["totals"]?["pushed"]?.intValue == 12)
        #expect(try world.ledgerCount == 12)
        try world.expectVerifyClean()
    }

    @Test("a second sync of the same agency from another copy of its queue is refused while the first runs against the central database")
    func secondSyncOfOneAgencyCentrally() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<3 { try outbox.submit() }
        // Another process's session-level agency lock, as a running sync holds it.
        let other = try world.connect()
        try other.execute("SELECT pg_advisory_lock($1, hashtext($2))",
                          [.int32(MergeLocks.agencySyncClass), .text(SyncFixture.agency.code)])
        #expect {
            try world.sync(queue)
        } throws: { error in
            "\(error)".contains("another cardsync sync of agency CS-FR-001 is running against the central database")
        }
        #expect(try world.ledgerCount == 0)

        let unlocker = Handoff(other)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.4) {
            _ = try? unlocker.take().execute("SELECT pg_advisory_unlock($1, hashtext($2))",
                                   [.int32(MergeLocks.agencySyncClass), .text(SyncFixture.agency.code)])
        }
        let result = try world.sync(queue, lockWait: .seconds(20))
        #expect(result.pushed == 3)
        try world.expectVerifyClean()
    }

    @Test("two syncs of one agency started at the same moment: each finishes or fails with the lock message, and the result is what one sync gives")
    func twoConcurrentSyncsOfOneAgency() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        var apps: [UUID] = []
        for _ in 0..<150 { apps.append(try outbox.submit()) }
        for app in apps.prefix(50) { try outbox.verify(app) }
        try outbox.appendRaw(Array("{oops".utf8))
        try outbox.submit(child: 3)            // a duplicate: one conflict, one conflict_opened for the agency
        let reference = try SyncWorld()
        let referenceQueue = try QueueFiles.copy(queue, to: reference.path("copy"))

        let arguments = ["sync", queue.path, "--database", world.uri, "--batch-size", "7"]
        let a = try CardsyncCLI.start(arguments, scratch: world.directory.url)
        let b = try CardsyncCLI.start(arguments, scratch: world.directory.url)
        let outputs = [a.wait(), b.wait()]
        for output in outputs where output.status != 0 {
            #expect(output.status == 1)
            #expect(output.stderr.contains("another cardsync sync"), "stderr: \(output.stderr)")
        }
        #expect(outputs.contains { $0.status == 0 })

        try reference.sync(referenceQueue, batchSize: 7)
        let expected = try reference.snapshot()
        let actual = try world.snapshot()
        #expect(actual == expected, "differences: \(actual.differences(from: expected))")
        #expect(try QueueFiles.inbox(queue).map(QueueFiles.normalized) == (try QueueFiles.inbox(referenceQueue)).map(QueueFiles.normalized))
        #expect(try QueueFiles.quarantineSummary(queue) == (try QueueFiles.quarantineSummary(referenceQueue)))
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts WHERE kind = 'duplicate_application'") == 1)
        let settled = try world.sync(queue)
        #expect(settled.pushed == 0 && settled.pulled == 0)
        try world.expectVerifyClean()
    }

    // MARK: Duplicates from many agencies at once

    static let duplicateAgencies = [
        Agency(code: "CS-FR-001", name: "芙蓉区社保卡服务网点", district: "芙蓉区"),
        Agency(code: "CS-YL-002", name: "岳麓区社保卡服务网点", district: "岳麓区"),
        Agency(code: "CS-TX-003", name: "天心区社保卡服务网点", district: "天心区"),
        Agency(code: "CS-ONLINE", name: "长沙市社保卡网上服务大厅", district: "长沙市", channel: .online),
    ]

    @Test("agencies syncing submissions of the same child at the same moment produce exactly one open application and one duplicate_application conflict per extra submission",
          arguments: 0..<20)
    func concurrentDuplicateSubmissions(round: Int) throws {
        let world = try SyncWorld()
        let agencies = Self.duplicateAgencies
        // Each agency took an application for child 42, at different moments (round-dependent),
        // plus a few applications of other children around it.
        var submissions: [(agency: String, app: UUID, at: Timestamp)] = []
        var queues: [QueueDirectory] = []
        for (index, agency) in agencies.enumerated() {
            let queue = try world.queue(agency)
            queues.append(queue)
            let outbox = OutboxScript(queue, firstChild: 1000 * (index + 1))
            try outbox.submit()
            let minutes = 60 + ((index + round) % agencies.count) * 7
            let at = SyncFixture.at(minutes: minutes)
            submissions.append((agency.code, try outbox.submit(child: 42, at: at), at))
            try outbox.submit()
        }
        let uri = world.uri
        let runner = SyncRunner(connect: { try DatabaseSelection(flag: uri).connect(logger: .test, migrate: false) }, logger: .test)
        let results = runner.run(round % 2 == 0 ? queues : queues.reversed(), jobs: agencies.count)
        for result in results {
            let row = try result.get()
            #expect(row.pushed == 3)
        }

        let child = SyncFixture.childID(42).text
        let statuses = try world.texts("""
            SELECT application_id::text || ' ' || status FROM cardsync.applications
            WHERE child_id_number = $1 ORDER BY application_id
            """, [.text(child)])
        #expect(statuses.count == agencies.count)
        let active = statuses.filter { !$0.hasSuffix(" on_hold") }
        #expect(active.count == 1, "exactly one active open application: \(statuses)")
        #expect(statuses.filter { $0.hasSuffix(" on_hold") }.count == agencies.count - 1)
        // The duplicate rule: the earlier occurred_at stays, whatever order the syncs arrived in.
        let earliest = submissions.min { $0.at < $1.at }!
        #expect(active == ["\(earliest.app.lowercased) submitted"])
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts WHERE kind = 'duplicate_application'")
            == agencies.count - 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts") == agencies.count - 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE status = 'submitted'") == 2 * agencies.count + 1)
        try world.expectVerifyClean()

        // Each agency whose application went on hold is told so in its inbox.
        for queue in queues { try world.sync(queue) }
        for (queue, submission) in zip(queues, submissions) where submission.app != earliest.app {
            let opened = try QueueFiles.inbox(queue).filter { $0.type == .conflictOpened && $0.applicationID == submission.app }
            #expect(opened.last?.data["status"]?.stringValue == "on_hold", "\(submission.agency) learns its application is on hold")
        }
    }
}
