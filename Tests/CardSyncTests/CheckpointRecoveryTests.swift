import CardCore
import CardDatabase
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// A lost or unreadable `state.json` must not cost the agency what it already received: the
/// inbox and the quarantine are never cut to nothing, and a sync against another central
/// database than before is refused unless the operator says the agency moved.
@Suite("Checkpoint recovery and centre identity")
struct CheckpointRecoveryTests {
    /// A queue with valid events, one quarantined line, and bureau decisions in its inbox.
    static func syncedQueue(_ world: SyncWorld) throws -> (QueueDirectory, OutboxScript) {
        let queue = try world.queue()
        let script = OutboxScript(queue)
        var apps: [UUID] = []
        for _ in 0..<6 { apps.append(try script.submit()) }
        try script.appendRaw(Array(#"{"seq": 99, "not": "an event"}"#.utf8))
        script.skipSeq(to: 99)
        try world.sync(queue)
        for app in apps.prefix(4) {
            _ = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: [app], data: { _ in [:] })
        }
        try world.sync(queue)
        #expect(try QueueFiles.inbox(queue).count == 4)
        #expect(try QueueFiles.quarantine(queue).count == 1)
        return (queue, script)
    }

    @Test("a lost state.json keeps every inbox and quarantine line: the checkpoint is rebuilt from the files and the centre")
    func lostStateKeepsInboxAndQuarantine() throws {
        let world = try SyncWorld()
        let (queue, script) = try Self.syncedQueue(world)
        let inboxBefore = QueueFiles.bytes(queue.inboxFile)
        let quarantineBefore = QueueFiles.bytes(queue.quarantineFile)
        let ledgerBefore = try world.ledgerCount
        try FileManager.default.removeItem(at: queue.stateFile)

        let result = try world.sync(queue)
        #expect(result.pushed == 0)
        #expect(result.alreadyPresent == 6)
        #expect(result.pulled == 0)
        #expect(QueueFiles.bytes(queue.inboxFile) == inboxBefore)
        #expect(QueueFiles.bytes(queue.quarantineFile) == quarantineBefore)
        #expect(try world.ledgerCount == ledgerBefore)

        // The rebuilt checkpoint carries on as usual: new lines sync, new decisions arrive once.
        let app = try script.submit()
        try world.sync(queue)
        _ = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: [app], data: { _ in [:] })
        let next = try world.sync(queue)
        #expect(next.pulled == 1)
        QueueFiles.expectNoDuplicates(try QueueFiles.inbox(queue))
        #expect(try QueueFiles.inbox(queue).count == 5)
        #expect(try QueueFiles.quarantine(queue).count == 1)
        try world.expectVerifyClean()
    }

    @Test("an unreadable state.json is set aside, not deleted, and the inbox is kept")
    func unreadableStateIsSetAside() throws {
        let world = try SyncWorld()
        let (queue, _) = try Self.syncedQueue(world)
        let inboxBefore = QueueFiles.bytes(queue.inboxFile)
        try Data("{\"version\": 1, \"outbox_off".utf8).write(to: queue.stateFile)

        let result = try world.sync(queue)
        #expect(result.pushed == 0)
        #expect(QueueFiles.bytes(queue.inboxFile) == inboxBefore)
        #expect(try QueueFiles.quarantine(queue).count == 1)
        let names = try FileManager.default.contentsOfDirectory(atPath: queue.url.path)
        #expect(names.contains { $0.hasPrefix("state.json.unreadable-") }, "\(names)")
        #expect(try queue.loadCheckpoint() != nil)
    }

    @Test("with state.json lost, only a torn last inbox line is cut: every complete line stays")
    func lostStateCutsOnlyATornInboxLine() throws {
        let world = try SyncWorld()
        let (queue, _) = try Self.syncedQueue(world)
        let inboxBefore = QueueFiles.bytes(queue.inboxFile)
        let handle = try FileHandle(forWritingTo: queue.inboxFile)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"ledger_id": 12, "event_id": "#.utf8))
        try handle.close()
        try FileManager.default.removeItem(at: queue.stateFile)

        let result = try world.sync(queue)
        #expect(result.pulled == 0)
        #expect(QueueFiles.bytes(queue.inboxFile) == inboxBefore)
    }

    @Test("a lost state.json keeps decisions a restored centre can no longer deliver")
    func lostStateKeepsDecisionsTheCentreLost() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let script = OutboxScript(queue)
        var apps: [UUID] = []
        for _ in 0..<3 { apps.append(try script.submit()) }
        try world.sync(queue)
        // The backup is taken before the bureau decides.
        world.disconnect()
        let backup = try TestDatabase.freshDatabase(template: world.databaseName)
        _ = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: apps, data: { _ in [:] })
        try world.sync(queue)
        let inboxBefore = QueueFiles.bytes(queue.inboxFile)
        #expect(try QueueFiles.inbox(queue).count == 3)

        // The centre is restored from the backup, and the agency lost its state.json.
        try FileManager.default.removeItem(at: queue.stateFile)
        let result = try AgencySync(queue: queue, connection: try Connection(conninfo: backup),
                                    projection: try Connection(conninfo: backup), logger: .test).run()
        #expect(result.alreadyPresent == 3)
        #expect(QueueFiles.bytes(queue.inboxFile) == inboxBefore, "decisions the restored centre lacks are kept")
    }

    @Test("a queue synced with one central database is refused by another unless --new-centre says the agency moved")
    func otherCentreIsRefused() throws {
        let first = try SyncWorld()
        let (queue, _) = try Self.syncedQueue(first)
        let other = try SyncWorld()
        try other.register(SyncFixture.agency)

        #expect {
            try other.sync(queue)
        } throws: { error in
            "\(error)".contains("different central database") && "\(error)".contains("--new-centre")
        }
        #expect(try other.ledgerCount == 0)
        #expect {
            try AgencyReconcile(queue: queue, connection: try other.connect(), options: { var o = ReconcileOptions(); o.repair = true; return o }(), logger: .test).run()
        } throws: { error in "\(error)".contains("different central database") }
        #expect(try other.ledgerCount == 0)

        // Told that the agency moved: everything is pushed to the new centre, the inbox is kept.
        let inboxBefore = QueueFiles.bytes(queue.inboxFile)
        var options = SyncOptions()
        options.acceptNewCentre = true
        let moved = try AgencySync(queue: queue, connection: try other.connect(), projection: try other.connect(),
                                   options: options, logger: .test).run()
        #expect(moved.pushed == 6)
        #expect(moved.quarantined == 0, "the line quarantined before is not quarantined again")
        #expect(QueueFiles.bytes(queue.inboxFile) == inboxBefore)
        // From now on this is the queue's centre.
        let again = try other.sync(queue)
        #expect(again.pushed == 0)
        #expect {
            try first.sync(queue)
        } throws: { error in "\(error)".contains("different central database") }
    }

    @Test("the same centre restored from its own backup keeps its identity and is not refused")
    func restoredCentreKeepsItsIdentity() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let script = OutboxScript(queue)
        for _ in 0..<3 { try script.submit() }
        try world.sync(queue)
        // A backup: the database copied as a template (what pg_dump and restore bring back too).
        world.disconnect()
        let restored = try TestDatabase.freshDatabase(template: world.databaseName)
        for _ in 0..<2 { try script.submit() }
        try world.sync(queue)

        var options = SyncOptions()
        options.batchSize = 100
        let result = try AgencySync(queue: queue, connection: try Connection(conninfo: restored),
                                    projection: try Connection(conninfo: restored), options: options, logger: .test).run()
        #expect(result.pushed == 2)
        #expect(result.alreadyPresent == 3)
    }
}
