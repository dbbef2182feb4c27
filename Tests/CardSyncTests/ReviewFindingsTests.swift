import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// Findings of a review of the sync core against ../shared/spec: each test failed before its fix.
@Suite("Review findings")
struct ReviewFindingsTests {
    @Test("a valid-looking line holding a NUL character (\\u0000) is quarantined; it does not block the lines after it")
    func nulCharacterDoesNotBlockSync() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let first = try outbox.submit()
        // A withdrawal whose reason holds a NUL: valid JSON, but PostgreSQL's jsonb refuses \u0000.
        try outbox.append("withdrawn", app: first, data: ["reason": "家长\u{0}撤回"])
        let later = try outbox.submit()

        let result = try world.sync(queue)
        #expect(result.pushed == 2)
        #expect(result.quarantined == 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE application_id = $1", [.uuid(later)]) == 1)
        let entries = try QueueFiles.quarantine(queue)
        #expect(entries.map(\.lineNumber) == [2])
        try world.expectVerifyClean()
    }

    @Test("an event_id_reuse line offered again (a re-sync after a lost checkpoint) is not a second conflict")
    func reuseLineOfferedAgainIsNotASecondConflict() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let app = try outbox.submit()
        let reused = try outbox.append("documents_verified", app: app, data: ["documents": ["birth_certificate"]])
        // A counter bug: the same event_id again, for different content.
        try outbox.append("documents_verified", app: app, data: ["documents": ["guardian_id"]], eventID: reused)

        let first = try world.sync(queue)
        #expect(first.conflictsOpened == 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts WHERE kind = 'event_id_reuse'") == 1)

        // The checkpoint is lost (or the process died between commit and checkpoint): every line
        // is offered again. "The same event arriving again with the same content ... is not a
        // conflict: it is counted as already present and changes nothing."
        try FileManager.default.removeItem(at: queue.stateFile)
        let again = try world.sync(queue)
        #expect(again.conflictsOpened == 0)
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts WHERE kind = 'event_id_reuse'") == 1)
    }
}
