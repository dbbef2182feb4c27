import CardCore
import Foundation
import PostgresClient
import Testing
@testable import CardSync

/// "A child never gets a second card this way" (../shared/spec/lifecycle.md, duplicate_application),
/// and `pending_expired` conflicts counted by the syncs of the agencies they concern.
@Suite("Issued cards and expired pending events")
struct IssuedCardAndExpiryTests {
    typealias F = ConflictFixture

    /// Takes `app` (already submitted and synced from `queue`) to an issued card.
    static func issue(_ world: ConflictWorld, _ queue: QueueDirectory, _ app: UUID, card: String) throws {
        #expect(try world.bureau(.approved, app) == "applied")
        #expect(try world.bureau(.cardProduced, app, ["card_number": .string(card)]) == "applied")
        try world.record(queue, "card_issued", app: app, at: F.ago(hours: 1), data: F.cardIssued(card))
        try world.sync(queue)
        #expect(try world.status(app) == "issued")
    }

    @Test("a submitted for a child who holds an issued card is a duplicate_application: the issued one stays, the new one goes on_hold")
    func submissionForAChildWithAnIssuedCardIsADuplicate() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 30), data: F.submitted())
        try world.sync(a)
        try Self.issue(world, a, first, card: "A12345678")

        try world.record(b, "submitted", app: second, at: F.ago(hours: 0.5), data: F.submitted(phone: F.otherPhone))
        let synced = try world.sync(b)
        #expect(synced.conflictsOpened == 1)
        #expect(try world.status(second) == "on_hold")
        #expect(try world.status(first) == "issued")
        let conflict = try world.conflict(.duplicateApplication)
        #expect(conflict.detail["kept"]?.stringValue == first.lowercased)
        #expect(conflict.detail["held"]?.stringValue == second.lowercased)
        #expect(conflict.detail["rule"]?.stringValue == "the child already holds an issued card")
        #expect(try world.inbox(b, .conflictOpened).count == 1)

        // Only the issued card can be kept; keeping it withdraws the new application.
        let detail = try ConflictReview(connection: world.db).show(conflict.id)
        #expect(detail.decisions == ["--keep \(first.lowercased)"])
        let refused = world.refusal(conflict.id, .keep(second))
        #expect(refused?.code == .cannotKeep)
        #expect(refused.map { "\($0)".contains("already holds an issued card") } == true)
        _ = try world.resolve(conflict.id, .keep(first))
        #expect(try world.status(second) == "withdrawn")
        #expect(try world.status(first) == "issued")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("--keep of the held application is refused once the other was issued meanwhile; the list says which one was kept")
    func keepingTheHeldOneAfterTheOtherWasIssuedIsRefused() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 30), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 20), data: F.submitted(phone: F.otherPhone))
        try world.sync(a)
        try world.sync(b)
        let conflict = try world.conflict(.duplicateApplication)
        #expect(try world.status(second) == "on_hold")
        try Self.issue(world, a, first, card: "B87654321")

        let before = try world.count("SELECT count(*) FROM cardsync.ledger")
        let refused = world.refusal(conflict.id, .keep(second))
        #expect(refused?.code == .cannotKeep)
        let message = refused.map { "\($0)" } ?? ""
        #expect(message.contains("already holds an issued card") && message.contains(first.lowercased), "\(message)")
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger") == before, "a refusal records nothing")
        #expect(try world.status(second) == "on_hold")
        #expect(try world.conflict(.duplicateApplication).status == .open)

        // `conflicts show` offers only the decision that can succeed, and says why.
        let detail = try ConflictReview(connection: world.db).show(conflict.id)
        #expect(detail.decisions == ["--keep \(first.lowercased)"])
        #expect(detail.findings.contains { $0.contains("already holds an issued card") })

        _ = try world.resolve(conflict.id, .keep(first))
        #expect(try world.status(second) == "withdrawn")
        let resolved = try world.conflict(.duplicateApplication)
        #expect(resolved.keptApplicationID == first)
        #expect(resolved.outcomeText == "keep \(first.lowercased.prefix(8))")
        #expect(resolved.summary.hasPrefix("resolved: kept \(first.lowercased.prefix(8))"), "\(resolved.summary)")
        let listed = try world.cli(["list", "--status", "resolved"])
        #expect(listed.stdout.contains("keep \(first.lowercased.prefix(8))"), "\(listed.stdout)")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("a sync counts the pending_expired conflicts its sweep opens: conflicts_opened, and so --strict, see them")
    func expirySweepIsCounted() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        // An amendment for an application the centre never received: it waits as pending.
        try world.record(a, "amended", app: app, at: F.ago(hours: 2), data: F.amended(base: 1, ["guardian.phone": .string(F.otherPhone)]))
        let synced = try world.sync(a, horizon: 0)
        #expect(synced.pending == 1)
        #expect(synced.conflictsOpened == 1)
        #expect(try world.conflict(.pendingExpired).status == .open)
        // Reported once: the next sync of the same agency opens and counts nothing.
        #expect(try world.sync(a, horizon: 0).conflictsOpened == 0)
    }

    @Test("a pending_expired conflict opened during another agency's sync is reported to the agency it concerns, once")
    func expiryIsReportedToTheAgencyItConcerns() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        try world.record(a, "amended", app: UUID(), at: F.ago(hours: 2), data: F.amended(base: 1, ["guardian.phone": .string(F.otherPhone)]))
        let aFirst = try world.sync(a)
        #expect(aFirst.pending == 1)
        #expect(aFirst.conflictsOpened == 0)

        // B's sync runs the merge's sweep, which expires A's event: B is not concerned.
        try world.record(b, "submitted", app: UUID(), at: F.ago(hours: 1), data: F.submitted(child: F.otherChild))
        let bSync = try world.sync(b, horizon: 0)
        #expect(bSync.conflictsOpened == 0)
        let conflict = try world.conflict(.pendingExpired)
        #expect(conflict.agencyCodes == [F.agencyA])

        // A's next sync, with nothing new, reports it; the one after that does not.
        #expect(try world.sync(a).conflictsOpened == 1)
        #expect(try world.sync(a).conflictsOpened == 0)
    }
}
