import CardCore
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// A sync commits a batch's ledger rows and, right after, its projection rows on a second
/// connection. These tests put the centre in the state a process killed between those two
/// commits leaves (the projection behind its watermark) and check that `db verify` says so and
/// that the next merge, of a sync or of a bureau command, rebuilds the projection from the
/// ledger with nothing lost.
@Suite("Projection watermark")
struct ProjectionWatermarkTests {
    /// Leaves the projection as a sync killed between its two commits would: the watermark
    /// behind the ledger, one application missing and another one stale.
    static func breakProjection(_ world: SyncWorld, missing: UUID, stale: UUID) throws {
        try world.db.withTransaction { conn in
            try conn.execute("UPDATE cardsync.projection_state SET through_ledger_id = through_ledger_id - 1")
            try conn.execute("DELETE FROM cardsync.applications WHERE application_id = $1", [.uuid(missing)])
            try conn.execute("UPDATE cardsync.applications SET version = version + 7 WHERE application_id = $1", [.uuid(stale)])
        }
    }

    @Test("a sync killed between its two commits: db verify reports it, and the next sync rebuilds the projection to what an uninterrupted run holds")
    func nextSyncRebuilds() throws {
        let world = try SyncWorld()
        let control = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        var apps: [UUID] = []
        for _ in 0..<6 { apps.append(try outbox.submit()) }
        try outbox.verify(apps[0])
        try outbox.verify(apps[1])
        try outbox.withdraw(apps[5])
        let controlQueue = try QueueFiles.copy(queue, to: control.path("control"))

        try world.sync(queue, batchSize: 4)
        try control.sync(controlQueue, batchSize: 4)
        try world.expectVerifyClean()

        try Self.breakProjection(world, missing: apps[0], stale: apps[2])
        let broken = try ProjectionVerifier(connection: try world.db).verify()
        #expect(!broken.isClean)
        #expect(broken.lagging != nil)
        #expect(broken.differences.first?.contains("a sync stopped between its ledger and projection commits") == true,
                "\(broken.text)")
        #expect(broken.differences.contains { $0.contains(apps[0].lowercased) }, "\(broken.text)")

        // The agency records one more event; both centres receive it.
        try outbox.amend(apps[3], baseVersion: 1, phone: "13900002222")
        try FileManager.default.removeItem(at: controlQueue.outboxFile)
        try FileManager.default.copyItem(at: queue.outboxFile, to: controlQueue.outboxFile)
        let repaired = try world.sync(queue)
        try control.sync(controlQueue)
        #expect(repaired.pushed == 1)

        try world.expectVerifyClean()
        let differences = try world.snapshot().differences(from: try control.snapshot())
        #expect(differences.isEmpty, "\(differences)")
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE application_id = $1", [.uuid(apps[0])]) == 1)
    }

    @Test("a bureau command after such an interruption rebuilds the projection before it applies its decision")
    func bureauCommandRebuilds() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let first = try outbox.submit()
        let second = try outbox.submit()
        try world.sync(queue)

        try Self.breakProjection(world, missing: first, stale: second)
        let outcome = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: [first]) { _ in [:] }
        #expect(outcome.map(\.outcome) == ["applied"])
        try world.expectVerifyClean()
        #expect(try world.texts("SELECT status FROM cardsync.applications WHERE application_id = $1", [.uuid(first)]) == ["approved"])
        #expect(try world.texts("SELECT version::text FROM cardsync.applications WHERE application_id = $1", [.uuid(second)]) == ["1"])
    }

    static func lastLedgerID(_ world: SyncWorld) throws -> Int64 {
        Int64(try world.count("SELECT max(ledger_id) FROM cardsync.ledger"))
    }

    @Test("every merge moves the watermark to the ledger's last id")
    func watermarkFollowsTheLedger() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<5 { try outbox.submit() }
        try world.sync(queue, batchSize: 2)
        let afterSync = try ProjectionWatermark.read(on: try world.db)
        #expect(afterSync.isCurrent)
        #expect(afterSync.last == (try Self.lastLedgerID(world)))

        let app = try outbox.submit()
        try world.sync(queue)
        _ = try BureauRecorder(connection: try world.db, logger: .test).record(.approved, applications: [app]) { _ in [:] }
        let afterBureau = try ProjectionWatermark.read(on: try world.db)
        #expect(afterBureau.isCurrent)
        #expect(afterBureau.last == (try Self.lastLedgerID(world)))
        #expect(afterBureau.last > afterSync.last)
    }
}
