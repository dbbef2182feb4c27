import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// A bureau decision for an application id the centre has never seen is usually a typing
/// mistake: recorded one at a time it is refused unless the caller asks to hold it, and an
/// import (where the agency may simply not have synced yet) holds it but counts it.
@Suite struct BureauUnknownApplicationTests {
    /// A world with one synced application.
    private static func worldWithOneApplication() throws -> (SyncWorld, UUID) {
        let world = try SyncWorld()
        let queue = try world.queue()
        let app = try OutboxScript(queue).submit()
        try world.sync(queue)
        return (world, app)
    }

    @Test("recording decisions refuses them all when one application id is unknown, naming only the unknown ones")
    func unknownApplicationsAreRefusedAllOrNothing() throws {
        let (world, known) = try Self.worldWithOneApplication()
        let unknown = UUID(), another = UUID()
        let ledgerBefore = try world.ledgerCount
        let recorder = BureauRecorder(connection: try world.db, logger: .test)
        do {
            _ = try recorder.record(.approved, applications: [known, unknown, another], data: { _ in [:] })
            Issue.record("approved applications the centre does not know")
        } catch let error as BureauRecorder.UnknownApplicationsError {
            #expect(error.applicationIDs == [unknown, another])
            #expect(error.description.contains(unknown.lowercased))
            #expect(!error.description.contains(known.lowercased))
        }
        #expect(try world.ledgerCount == ledgerBefore)
        #expect(try world.texts("SELECT status FROM cardsync.applications") == ["submitted"])
        #expect(try recorder.unknownApplications(among: [known, unknown, unknown]) == [unknown])
    }

    @Test("holding unknown applications records them as pending and says which ones the centre did not know")
    func heldUnknownApplicationsArePending() throws {
        let (world, known) = try Self.worldWithOneApplication()
        let unknown = UUID()
        let results = try BureauRecorder(connection: try world.db, logger: .test)
            .record(.approved, applications: [known, unknown], data: { _ in [:] }, unknownApplications: .hold)
        #expect(results.map(\.outcome) == ["applied", "pending"])
        #expect(results.map(\.applicationKnown) == [true, false])
        #expect(try world.texts("SELECT outcome FROM cardsync.ledger WHERE application_id = $1", [.uuid(unknown)]) == ["pending"])
        try world.expectVerifyClean()
    }

    @Test("an import holds decisions for unknown applications and counts them; importing again counts none")
    func importCountsDecisionsHeldForUnknownApplications() throws {
        let (world, known) = try Self.worldWithOneApplication()
        let unknown = UUID(), other = UUID()
        let file = world.path("decisions.jsonl")
        try SyncFixture.writeLines([
            SyncFixture.decision(.approved, app: known, at: SyncFixture.at(minutes: 100)),
            SyncFixture.decision(.approved, app: unknown, at: SyncFixture.at(minutes: 101)),
            SyncFixture.decision(.cardProduced, app: unknown, at: SyncFixture.at(minutes: 102), data: ["card_number": "A12345678"]),
            SyncFixture.decision(.rejected, app: other, at: SyncFixture.at(minutes: 103), data: ["reason": "照片不合格"]),
        ], to: file)
        let first = try world.importBureau(file)
        #expect(first.merged.accepted == 4)
        #expect(first.merged.pending == 3)
        #expect(first.pendingForUnknownApplications == 3)

        let again = try world.importBureau(file)
        #expect(again.merged.alreadyPresent == 4)
        #expect(again.pendingForUnknownApplications == 0)
        try world.expectVerifyClean()
    }

    @Test("a decision pending for a known application's prerequisite is not counted as one for an unknown application")
    func pendingForAKnownApplicationIsNotCounted() throws {
        let (world, known) = try Self.worldWithOneApplication()
        let file = world.path("decisions.jsonl")
        // card_produced before the approval: held for the application's status, not for its submission.
        try SyncFixture.writeLines([
            SyncFixture.decision(.cardProduced, app: known, at: SyncFixture.at(minutes: 100), data: ["card_number": "A12345678"]),
        ], to: file)
        let report = try world.importBureau(file)
        #expect(report.merged.accepted == 1)
        #expect(report.pendingForUnknownApplications == 0)
    }
}
