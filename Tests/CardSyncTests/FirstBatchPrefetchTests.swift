import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// The runner reads a queue's first batch while the agency before it merges. Read without the
/// queue's lock, it may be stale by the time the queue's sync starts: then it must be dropped.
@Suite("First batch read ahead")
struct FirstBatchPrefetchTests {
    static func sync(_ world: SyncWorld, _ queue: QueueDirectory, prefetch: FirstBatchPrefetch?) throws -> AgencySyncResult {
        let sync = AgencySync(queue: queue, connection: try world.connect(), projection: try world.connect(), options: options, logger: .test)
        sync.prefetch = prefetch
        return try sync.run()
    }

    static var options: SyncOptions {
        var options = SyncOptions()
        options.batchSize = 4
        return options
    }

    @Test("a first batch read ahead is used when the queue's checkpoint has not moved since")
    func usedWhenCurrent() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<5 { try outbox.submit() }
        let prefetch = try #require(FirstBatchPrefetch.start(queue, options: Self.options))
        #expect(prefetch.matches(agency: SyncFixture.agency.code, checkpoint: .initial))

        let result = try Self.sync(world, queue, prefetch: prefetch)
        #expect(result.pushed == 5)
        #expect(result.alreadyPresent == 0)
        try world.expectVerifyClean()
    }

    @Test("a first batch read ahead is dropped when another sync moved the checkpoint meanwhile: only the new events are pushed")
    func droppedWhenStale() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<3 { try outbox.submit() }
        let stale = try #require(FirstBatchPrefetch.start(queue, options: Self.options))
        try world.sync(queue)   // another sync of the queue gets there first
        for _ in 0..<2 { try outbox.submit() }

        let result = try Self.sync(world, queue, prefetch: stale)
        #expect(result.pushed == 2)
        #expect(result.alreadyPresent == 0, "the stale batch was offered again")
        #expect(try world.ledgerCount == 5)
        try world.expectVerifyClean()
    }
}
