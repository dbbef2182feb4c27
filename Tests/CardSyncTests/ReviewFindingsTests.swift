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
}
