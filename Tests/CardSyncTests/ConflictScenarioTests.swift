import CardCore
import Foundation
import PostgresClient
import Testing
@testable import CardSync

// One scenario per conflict kind of ../shared/spec/lifecycle.md ("Conflicts"): from agency
// queues to the conflict row, through the reviewer's decision, to the lines each agency pulls
// into its inbox on its next sync. Every scenario ends with `db verify`'s check that the
// projection is still a fold of the ledger.

@Suite("Conflicts: review and resolution")
struct ConflictScenarioTests {
    typealias F = ConflictFixture

    // MARK: duplicate_application

    @Test("duplicate_application: the later submission goes on_hold with a conflict_opened line; --keep it returns it to its status, withdraws the other, and both agencies get a conflict_resolved line")
    func duplicateApplicationKeepTheHeldOne() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 5), data: F.submitted(phone: F.otherPhone))
        try world.sync(a)
        let bSync = try world.sync(b)
        #expect(bSync.conflictsOpened == 1)

        #expect(try world.status(first) == "submitted")
        #expect(try world.status(second) == "on_hold")
        let conflict = try world.conflict(.duplicateApplication)
        #expect(conflict.status == .open)
        #expect(Set(conflict.applicationIDs) == [first, second])
        #expect(Set(conflict.agencyCodes) == [F.agencyA, F.agencyB])
        #expect(conflict.detail["kept"]?.stringValue == first.lowercased)
        #expect(conflict.detail["held"]?.stringValue == second.lowercased)
        #expect(conflict.detail["rule"]?.stringValue == "the earlier occurred_at stays")

        // The held application's agency learns it is on hold; the other agency hears nothing yet.
        let opened = try world.inbox(b, .conflictOpened)
        #expect(opened.count == 1)
        #expect(opened.first?.applicationID == second)
        #expect(opened.first?.data["conflict_id"]?.intValue == conflict.id)
        #expect(opened.first?.data["kind"]?.stringValue == "duplicate_application")
        #expect(opened.first?.data["status"]?.stringValue == "on_hold")
        #expect(try world.inbox(a).isEmpty)

        // Decisions that do not fit are refused and change nothing.
        #expect(world.refusal(conflict.id, .keep(UUID()))?.code == .applicationNotInConflict)
        #expect(world.refusal(conflict.id, .dismiss)?.code == .decisionDoesNotFitKind)
        #expect(world.refusal(conflict.id, .accept)?.code == .decisionDoesNotFitKind)
        #expect(try world.conflict(.duplicateApplication).status == .open)

        let resolution = try world.resolve(conflict.id, .keep(second), by: "reviewer.li", note: "the guardian chose 岳麓区")
        #expect(resolution.outcome == .keep)
        #expect(resolution.changes.map(\.action) == ["withdraw", "keep"])
        #expect(try world.status(second) == "submitted")
        #expect(try world.status(first) == "withdrawn")

        let resolved = try world.conflict(.duplicateApplication)
        #expect(resolved.status == .resolved)
        #expect(resolved.outcome == .keep)
        #expect(resolved.resolvedBy == "reviewer.li")
        #expect(resolved.note == "the guardian chose 岳麓区")
        #expect(resolved.resolvedAt != nil)

        // Both agencies get a conflict_resolved line on their next sync, with their status.
        try world.sync(a)
        try world.sync(b)
        let toA = try world.inbox(a, .conflictResolved)
        let toB = try world.inbox(b, .conflictResolved)
        #expect(toA.count == 1 && toB.count == 1)
        #expect(toA.first?.applicationID == first)
        #expect(toA.first?.data["status"]?.stringValue == "withdrawn")
        #expect(toA.first?.data["outcome"]?.stringValue == "keep")
        #expect(toA.first?.data["conflict_id"]?.intValue == conflict.id)
        #expect(toB.first?.applicationID == second)
        #expect(toB.first?.data["status"]?.stringValue == "submitted")
        #expect(toB.first?.data["outcome"]?.stringValue == "keep")
        // The withdrawal reached the ledger before the keep (one active application per child).
        #expect(toA.first!.ledgerID < toB.first!.ledgerID)

        // Resolving twice is refused and changes nothing.
        let again = world.refusal(conflict.id, .keep(first), by: "reviewer.wang")
        #expect(again?.code == .alreadyResolved)
        #expect(again?.message.contains("conflict \(conflict.id) was already resolved on") == true)
        #expect(again?.message.contains("by reviewer.li") == true)
        #expect(again?.message.hasSuffix("nothing changed") == true)
        #expect(try world.status(first) == "withdrawn")
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE type = 'conflict_resolved'") == 2)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("duplicate_application: --keep the application that stayed withdraws the held one and leaves the kept one in its status")
    func duplicateApplicationKeepTheKeptOne() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.sync(a)
        #expect(try world.bureau(.approved, first) == "applied")
        // Already approved: the existing one stays whatever the occurred_at.
        try world.record(b, "submitted", app: second, at: F.ago(hours: 20), data: F.submitted())
        try world.sync(b)
        let conflict = try world.conflict(.duplicateApplication)
        #expect(conflict.detail["rule"]?.stringValue == "the existing application is already approved")
        #expect(try world.status(second) == "on_hold")

        _ = try world.resolve(conflict.id, .keep(first))
        #expect(try world.status(first) == "approved")
        #expect(try world.status(second) == "withdrawn")
        try world.sync(a)
        try world.sync(b)
        #expect(try world.inbox(a, .conflictResolved).first?.data["status"]?.stringValue == "approved")
        #expect(try world.inbox(b, .conflictResolved).first?.data["status"]?.stringValue == "withdrawn")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("a bureau decision held while its application is on hold applies once the application is kept")
    func decisionHeldOnHoldAppliesAfterKeep() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 5), data: F.submitted())
        try world.sync(a)
        try world.sync(b)
        #expect(try world.bureau(.approved, second) == "pending")
        let conflict = try world.conflict(.duplicateApplication)
        _ = try world.resolve(conflict.id, .keep(second))
        #expect(try world.status(second) == "approved")
        try world.sync(b)
        let types = try world.inbox(b).map(\.type)
        #expect(types == [.conflictOpened, .conflictResolved, .approved])
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("keeping an application while another application of the same child is active elsewhere is refused")
    func keepRefusedWhenAnotherApplicationOfTheChildIsActive() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB), c = try world.queue(F.agencyC)
        let first = UUID(), second = UUID(), third = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 5), data: F.submitted())
        try world.record(c, "submitted", app: third, at: F.ago(hours: 12), data: F.submitted())
        try world.sync(a)
        try world.sync(b)   // conflict 1: first kept, second held
        try world.sync(c)   // conflict 2: third (earlier) kept, first held
        #expect(try world.status(third) == "submitted")
        #expect(try world.status(first) == "on_hold")
        #expect(try world.status(second) == "on_hold")
        let conflicts = try world.conflicts(ConflictFilter(kind: .duplicateApplication))
        #expect(conflicts.count == 2)
        let firstConflict = try #require(conflicts.first { Set($0.applicationIDs) == [first, second] })

        let refusal = world.refusal(firstConflict.id, .keep(second))
        #expect(refusal?.code == .cannotKeep)
        #expect(refusal?.message.contains(third.lowercased) == true)
        #expect(try world.status(second) == "on_hold")
        #expect(try world.status(first) == "on_hold")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    // MARK: concurrent_amendment

    @Test("concurrent_amendment: two amendments from base_version 1 change the same field; the later occurred_at wins, the losing value is kept, and --apply-other applies it and reaches the agency")
    func concurrentAmendmentApplyOther() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 10), data: F.submitted())
        try world.sync(a)
        let earlier = try world.record(a, "amended", app: app, at: F.ago(hours: 3),
                                       data: F.amended(base: 1, ["guardian.phone": "13900001111"]))
        try world.sync(a)
        let later = try world.record(b, "amended", app: app, at: F.ago(hours: 2),
                                     data: F.amended(base: 1, ["guardian.phone": "13700002222", "guardian.name": "王建军"]))
        try world.sync(b)

        #expect(try world.formValue(app, "guardian.phone") == "13700002222")
        #expect(try world.formValue(app, "guardian.name") == "王建军")
        let conflict = try world.conflict(.concurrentAmendment)
        #expect(conflict.status == .resolved)
        #expect(conflict.outcome == .autoMerged)
        #expect(conflict.resolvedBy == "cardsync")
        #expect(conflict.awaitsReview)
        let fields = conflict.detail["fields"]?.arrayValue ?? []
        #expect(fields.count == 1)   // guardian.name was not changed since base_version: no contest
        #expect(fields.first?["path"]?.stringValue == "guardian.phone")
        #expect(fields.first?["winner"]?.stringValue == "this_event")

        // The reviewer sees both values of the field, masked, and the value now.
        let detail = try ConflictReview(connection: world.db).show(conflict.id)
        #expect(detail.fields.count == 1)
        #expect(detail.fields.first?.appliedValue == .string(PhoneNumber.masked("13700002222")))
        #expect(detail.fields.first?.losingValue == .string(PhoneNumber.masked("13900001111")))
        #expect(detail.fields.first?.currentValue == .string(PhoneNumber.masked("13700002222")))
        #expect(Set(detail.events.map(\.eventID)) == [earlier, later])
        #expect(detail.decisions == ["--accept", "--apply-other"])

        #expect(world.refusal(conflict.id, .dismiss)?.code == .decisionDoesNotFitKind)
        let resolution = try world.resolve(conflict.id, .applyOther, by: "reviewer.zhao")
        #expect(resolution.changes.map(\.action) == ["apply_changes"])
        #expect(try world.formValue(app, "guardian.phone") == "13900001111")
        #expect(try world.formValue(app, "guardian.name") == "王建军")
        let resolved = try world.conflict(.concurrentAmendment)
        #expect(resolved.outcome == .applyOther)
        #expect(resolved.resolvedBy == "reviewer.zhao")
        #expect(resolved.detail.value(atPath: "automatic.outcome") == "auto_merged")

        // The owning agency receives the resolution with the values applied.
        try world.sync(a)
        let lines = try world.inbox(a, .conflictResolved)
        #expect(lines.count == 1)
        #expect(lines.first?.data["outcome"]?.stringValue == "apply_other")
        #expect(lines.first?.data["status"]?.stringValue == "submitted")
        #expect(lines.first?.data.value(atPath: "changes")?["guardian.phone"] == "13900001111")

        // Once a person decided, it is final.
        #expect(world.refusal(conflict.id, .accept)?.code == .alreadyResolved)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("concurrent_amendment: an amendment that arrives later but occurred earlier loses the field; --accept keeps the merge as it is")
    func concurrentAmendmentAccept() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 10), data: F.submitted())
        try world.record(a, "amended", app: app, at: F.ago(hours: 2), data: F.amended(base: 1, ["household.address": "长沙市岳麓区麓山南路1号"]))
        try world.record(a, "amended", app: app, at: F.ago(hours: 3), data: F.amended(base: 1, ["household.address": "长沙市天心区书院路9号"]))
        try world.sync(a)
        #expect(try world.formValue(app, "household.address") == "长沙市岳麓区麓山南路1号")
        let conflict = try world.conflict(.concurrentAmendment)
        #expect(conflict.detail.value(atPath: "losing_changes")?["household.address"] == "长沙市天心区书院路9号")
        #expect(conflict.detail["fields"]?.arrayValue?.first?["winner"] == "earlier_change")

        let version = try world.count("SELECT version FROM cardsync.applications WHERE application_id = $1", [.uuid(app)])
        _ = try world.resolve(conflict.id, .accept)
        #expect(try world.formValue(app, "household.address") == "长沙市岳麓区麓山南路1号")
        #expect(try world.conflict(.concurrentAmendment).outcome == .accept)
        #expect(try world.count("SELECT version FROM cardsync.applications WHERE application_id = $1", [.uuid(app)]) == version + 1)
        try world.sync(a)
        #expect(try world.inbox(a, .conflictResolved).first?.data["outcome"] == "accept")
        #expect(world.refusal(conflict.id, .applyOther)?.code == .alreadyResolved)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("concurrent_amendment: --apply-other is refused once the application is approved and the values include more than guardian.phone")
    func applyOtherRefusedAfterApproval() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 10), data: F.submitted())
        try world.record(a, "amended", app: app, at: F.ago(hours: 2), data: F.amended(base: 1, ["child.name": "王晓明"]))
        try world.record(a, "amended", app: app, at: F.ago(hours: 3), data: F.amended(base: 1, ["child.name": "王小名"]))
        try world.sync(a)
        _ = try world.bureau(.approved, app)
        let conflict = try world.conflict(.concurrentAmendment)
        #expect(world.refusal(conflict.id, .applyOther)?.code == .cannotApplyOther)
        #expect(try world.formValue(app, "child.name") == "王晓明")
        #expect(try world.conflict(.concurrentAmendment).awaitsReview)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    // MARK: invalid_transition

    @Test("invalid_transition: card_issued with the wrong card number and approved after rejected are not applied, open, and --dismiss closes them")
    func invalidTransitionDismiss() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let issuedApp = UUID(), rejectedApp = UUID()
        try world.record(a, "submitted", app: issuedApp, at: F.ago(hours: 30), data: F.submitted())
        try world.record(a, "submitted", app: rejectedApp, at: F.ago(hours: 29), data: F.submitted(child: F.otherChild))
        try world.sync(a)
        _ = try world.bureau(.approved, issuedApp)
        _ = try world.bureau(.cardProduced, issuedApp, ["card_number": "A12345678"])
        let wrongCard = try world.record(a, "card_issued", app: issuedApp, at: F.ago(hours: 1), data: F.cardIssued("B99999999"))
        try world.sync(a)
        #expect(try world.ledgerOutcome(eventID: wrongCard) == "not_applied")
        #expect(try world.status(issuedApp) == "produced")

        #expect(try world.bureau(.rejected, rejectedApp, ["reason": "照片不合格"]) == "applied")
        #expect(try world.bureau(.approved, rejectedApp) == "not_applied")

        let open = try world.conflicts(ConflictFilter(status: .open, kind: .invalidTransition))
        #expect(open.count == 2)
        let cardConflict = try #require(open.first { $0.applicationIDs == [issuedApp] })
        let approvalConflict = try #require(open.first { $0.applicationIDs == [rejectedApp] })
        #expect(cardConflict.detail["event_type"] == "card_issued")
        #expect(cardConflict.detail["reason"]?.stringValue?.contains("B99999999") == true)
        #expect(cardConflict.detail["applied"] == false)
        #expect(approvalConflict.detail["event_type"] == "approved")
        #expect(approvalConflict.detail["status"] == "rejected")

        let shown = try ConflictReview(connection: world.db).show(cardConflict.id)
        #expect(shown.events.map(\.outcome) == ["not_applied"])
        #expect(shown.events.first?.agencyCode == F.agencyA)
        #expect(shown.decisions == ["--dismiss"])

        #expect(world.refusal(cardConflict.id, .accept)?.code == .decisionDoesNotFitKind)
        #expect(world.refusal(cardConflict.id, .keep(issuedApp))?.code == .decisionDoesNotFitKind)
        _ = try world.resolve(cardConflict.id, .dismiss, note: "counter typo; the right card was handed over")
        _ = try world.resolve(approvalConflict.id, .dismiss)
        #expect(try world.conflicts(ConflictFilter(status: .open)).isEmpty)
        #expect(try world.ledgerOutcome(eventID: wrongCard) == "not_applied")
        #expect(try world.status(issuedApp) == "produced")
        #expect(try world.status(rejectedApp) == "rejected")

        try world.sync(a)
        let lines = try world.inbox(a, .conflictResolved)
        #expect(lines.count == 2)
        #expect(lines.first { $0.applicationID == issuedApp }?.data["status"] == "produced")
        #expect(lines.first { $0.applicationID == rejectedApp }?.data["status"] == "rejected")
        #expect(lines.allSatisfy { $0.data["outcome"] == "dismiss" })
        #expect(world.refusal(cardConflict.id, .dismiss)?.code == .alreadyResolved)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    // MARK: pending_expired

    @Test("pending_expired: a pending event past the horizon opens a conflict; when the prerequisite arrives it applies and the conflict resolves itself with outcome applied")
    func pendingExpiredResolvesItselfWhenThePrerequisiteArrives() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 30), data: F.submitted())
        try world.sync(a)
        _ = try world.bureau(.approved, app)
        let issued = try world.record(a, "card_issued", app: app, at: F.ago(hours: 1), data: F.cardIssued("A12345678"))
        try world.sync(a, horizon: 0)
        #expect(try world.ledgerOutcome(eventID: issued) == "pending")
        let conflict = try world.conflict(.pendingExpired)
        #expect(conflict.status == .open)
        #expect(conflict.applicationIDs == [app])
        #expect(conflict.agencyCodes == [F.agencyA])
        #expect(conflict.detail["event_type"] == "card_issued")
        #expect(conflict.detail["horizon_seconds"] == 0)

        #expect(try world.bureau(.cardProduced, app, ["card_number": "A12345678"]) == "applied")
        #expect(try world.ledgerOutcome(eventID: issued) == "applied")
        #expect(try world.status(app) == "issued")
        let resolved = try world.conflict(.pendingExpired)
        #expect(resolved.status == .resolved)
        #expect(resolved.outcome == .applied)
        #expect(resolved.resolvedBy == "cardsync")
        #expect(world.refusal(conflict.id, .dismiss)?.code == .alreadyResolved)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("pending_expired: when the prerequisite arrives but the event can never apply, the invalid_transition conflict takes over and the pending_expired one closes")
    func pendingExpiredGivesWayToInvalidTransitionWhenTheEventCanNeverApply() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 30), data: F.submitted())
        try world.sync(a)
        _ = try world.bureau(.approved, app)
        let issued = try world.record(a, "card_issued", app: app, at: F.ago(hours: 1), data: F.cardIssued("A12345678"))
        try world.sync(a, horizon: 0)
        #expect(try world.conflict(.pendingExpired).status == .open)

        // The card produced carries another number: the pending card_issued can never apply.
        #expect(try world.bureau(.cardProduced, app, ["card_number": "B00000001"]) == "applied")
        #expect(try world.ledgerOutcome(eventID: issued) == "not_applied")
        let expired = try world.conflict(.pendingExpired)
        #expect(expired.status == .resolved)
        #expect(expired.resolvedBy == "cardsync")
        #expect(try world.conflict(.invalidTransition).status == .open)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("pending_expired: --dismiss leaves the event pending; it still applies if the prerequisite arrives, and the conflict is not opened again")
    func pendingExpiredDismissKeepsTheEventPending() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID()
        try world.record(a, "submitted", app: app, at: F.ago(hours: 30), data: F.submitted())
        try world.sync(a)
        _ = try world.bureau(.approved, app)
        let issued = try world.record(a, "card_issued", app: app, at: F.ago(hours: 1), data: F.cardIssued("A12345678"))
        try world.sync(a, horizon: 0)
        let conflict = try world.conflict(.pendingExpired)

        #expect(world.refusal(conflict.id, .keep(app))?.code == .decisionDoesNotFitKind)
        _ = try world.resolve(conflict.id, .dismiss)
        #expect(try world.ledgerOutcome(eventID: issued) == "pending")
        #expect(try world.status(app) == "approved")
        try world.sync(a, horizon: 0)
        #expect(try world.conflicts(ConflictFilter(status: .all, kind: .pendingExpired)).count == 1)
        #expect(try world.inbox(a, .conflictResolved).first?.data["status"] == "approved")

        _ = try world.bureau(.cardProduced, app, ["card_number": "A12345678"])
        #expect(try world.ledgerOutcome(eventID: issued) == "applied")
        #expect(try world.status(app) == "issued")
        let after = try world.conflict(.pendingExpired)
        #expect(after.outcome == .dismiss)
        #expect(after.resolvedBy == "reviewer.li")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    // MARK: event_id_reuse

    @Test("event_id_reuse: an event_id already in the ledger arriving with different content is not applied, the conflict is open, and --dismiss tells every agency it names")
    func eventIDReuseDismiss() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA)
        let app = UUID(), stranger = UUID()
        let submittedID = try world.record(a, "submitted", app: app, at: F.ago(hours: 10), data: F.submitted())
        try world.sync(a)
        // A counter bug reuses the submission's event_id for an amendment of another application.
        try world.record(a, "amended", app: stranger, at: F.ago(hours: 1),
                         data: F.amended(base: 1, ["guardian.phone": .string(F.otherPhone)]), eventID: submittedID)
        try world.sync(a)

        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE event_id = $1", [.uuid(submittedID)]) == 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE application_id = $1", [.uuid(stranger)]) == 0)
        let conflict = try world.conflict(.eventIdReuse)
        #expect(conflict.status == .open)
        #expect(Set(conflict.applicationIDs) == [app, stranger])
        #expect(conflict.detail.value(atPath: "incoming.type") == "amended")
        #expect(conflict.detail["existing_type"] == "submitted")

        let shown = try ConflictReview(connection: world.db).show(conflict.id)
        #expect(shown.events.map(\.outcome) == ["applied", "refused"])
        #expect(shown.events.last?.ledgerID == nil)
        #expect(shown.applications.first { $0.applicationID == stranger }?.known == false)
        #expect(!JSONWriter.string(shown.json).contains(F.otherPhone))

        #expect(world.refusal(conflict.id, .applyOther)?.code == .decisionDoesNotFitKind)
        let resolution = try world.resolve(conflict.id, .dismiss)
        #expect(resolution.changes.count == 2)
        #expect(try world.status(app) == "submitted")
        #expect(try world.count("SELECT count(*) FROM cardsync.applications WHERE application_id = $1", [.uuid(stranger)]) == 0)
        try world.sync(a)
        let lines = try world.inbox(a, .conflictResolved)
        #expect(Set(lines.map(\.applicationID)) == [app, stranger])
        #expect(lines.allSatisfy { $0.data["outcome"] == "dismiss" && $0.data["conflict_id"]?.intValue == conflict.id })
        #expect(world.refusal(conflict.id, .dismiss)?.code == .alreadyResolved)
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    // MARK: Review

    @Test("list filters by status, kind, agency and detection time")
    func listFilters() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID(), amendedApp = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 5), data: F.submitted())
        try world.record(a, "submitted", app: amendedApp, at: F.ago(hours: 10), data: F.submitted(child: F.otherChild))
        try world.record(a, "amended", app: amendedApp, at: F.ago(hours: 2), data: F.amended(base: 1, ["child.name": "王晓明"]))
        try world.record(a, "amended", app: amendedApp, at: F.ago(hours: 3), data: F.amended(base: 1, ["child.name": "王小名"]))
        try world.sync(a)
        try world.sync(b)
        let review = ConflictReview(connection: world.db)

        #expect(try review.list().map(\.kind) == [.duplicateApplication])   // open by default
        #expect(try review.list(ConflictFilter(status: .resolved)).map(\.kind) == [.concurrentAmendment])
        #expect(try review.list(ConflictFilter(status: .all)).count == 2)
        #expect(try review.list(ConflictFilter(status: .all, kind: .concurrentAmendment)).count == 1)
        #expect(try review.list(ConflictFilter(status: .all, kind: .eventIdReuse)).isEmpty)
        #expect(try review.list(ConflictFilter(status: .all, agency: F.agencyB)).map(\.kind) == [.duplicateApplication])
        #expect(try review.list(ConflictFilter(status: .all, agency: F.agencyA)).count == 2)
        #expect(try review.list(ConflictFilter(status: .all, agency: "CS-NONE-999")).isEmpty)
        let now = Timestamp.now.microseconds
        let hour: Int64 = 3_600_000_000
        #expect(try review.list(ConflictFilter(status: .all, detectedFrom: Timestamp(microseconds: now - hour))).count == 2)
        #expect(try review.list(ConflictFilter(status: .all, detectedFrom: Timestamp(microseconds: now + hour))).isEmpty)
        #expect(try review.list(ConflictFilter(status: .all, detectedBefore: Timestamp(microseconds: now - hour))).isEmpty)
        #expect(try review.list(ConflictFilter(status: .all, detectedFrom: Timestamp(microseconds: now - hour),
                                               detectedBefore: Timestamp(microseconds: now + hour))).count == 2)

        let ids = try review.list(ConflictFilter(status: .all)).map(\.id)
        #expect(ids == ids.sorted())
    }

    @Test("show puts the duplicate applications side by side with owning agency and status; identity numbers keep only their last four characters and phone numbers are masked")
    func showMasksPersonalData() throws {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let first = UUID(), second = UUID()
        try world.record(a, "submitted", app: first, at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: second, at: F.ago(hours: 5), data: F.submitted(phone: F.otherPhone))
        try world.sync(a)
        try world.sync(b)
        let conflict = try world.conflict(.duplicateApplication)
        let detail = try ConflictReview(connection: world.db).show(conflict.id)

        #expect(detail.applications.map(\.applicationID) == conflict.applicationIDs)
        let kept = try #require(detail.applications.first { $0.role == "kept" })
        let held = try #require(detail.applications.first { $0.role == "held" })
        #expect(kept.applicationID == first && kept.owningAgency == F.agencyA && kept.status == .submitted)
        #expect(held.applicationID == second && held.owningAgency == F.agencyB && held.status == .onHold)
        #expect(held.heldStatus == .submitted)
        #expect(kept.formText("child.id_number") == "**************" + F.child.text.suffix(4))
        #expect(kept.formText("guardian.id_number") == F.guardian.masked)
        #expect(kept.formText("guardian.phone") == PhoneNumber.masked(F.phone))
        #expect(held.formText("guardian.phone") == PhoneNumber.masked(F.otherPhone))
        #expect(kept.formText("child.name") == "王小明")
        #expect(detail.events.map(\.type) == ["submitted", "submitted"])
        #expect(detail.events.map(\.outcome) == ["applied", "applied"])
        #expect(Set(detail.events.compactMap(\.agencyCode)) == [F.agencyA, F.agencyB])
        #expect(detail.history.map(\.type) == ["conflict_opened"])
        #expect(detail.decisions == ["--keep \(first.lowercased)", "--keep \(second.lowercased)"])
        #expect(detail.findings.contains { $0.hasPrefix("Put on hold: application \(second.lowercased) of \(F.agencyB)") })

        let json = JSONWriter.string(detail.json, pretty: true)
        for secret in [F.child.text, F.guardian.text, F.phone, F.otherPhone] {
            #expect(!json.contains(secret), "show output contains \(secret)")
        }
        #expect(json.contains(F.child.masked))
        #expect(json.contains(PhoneNumber.masked(F.phone)))
        for text in detail.findings + [conflict.summary] {
            #expect(![F.child.text, F.guardian.text, F.phone].contains { text.contains($0) })
        }
    }

    @Test("masking finds identity and phone numbers anywhere in a detail, by key and by shape")
    func maskingByKeyAndShape() {
        let value: JSONValue = [
            "incoming": ["data": ["child": ["id_number": .string(F.child.text)], "changes": ["guardian.phone": "0731-84561234"]]],
            "fields": [["path": "guardian.phone", "applied_value": "13812345678", "losing_value": "not-a-phone"]],
            "note": .string(F.guardian.text), "card_number": "A12345678", "register": "430102000123",
        ]
        let masked = JSONWriter.string(PersonalDataMask.json(value))
        #expect(!masked.contains(F.child.text) && !masked.contains(F.guardian.text))
        #expect(!masked.contains("84561234") && !masked.contains("13812345678"))
        #expect(masked.contains(F.child.masked) && masked.contains(F.guardian.masked))
        #expect(masked.contains("073*-******34") && masked.contains("138******78"))
        #expect(masked.contains(PhoneNumber.masked("not-a-phone")))
        #expect(masked.contains("A12345678") && masked.contains("430102000123"))
    }
}

@Suite("Conflicts: the cardsync conflicts command")
struct ConflictsCommandTests {
    typealias F = ConflictFixture

    /// Two agencies, one child: an open duplicate_application conflict.
    func duplicateWorld() throws -> (ConflictWorld, ConflictRecord, held: UUID) {
        let world = try ConflictWorld()
        let a = try world.queue(F.agencyA), b = try world.queue(F.agencyB)
        let held = UUID()
        try world.record(a, "submitted", app: UUID(), at: F.ago(hours: 10), data: F.submitted())
        try world.record(b, "submitted", app: held, at: F.ago(hours: 5), data: F.submitted(phone: F.otherPhone))
        try world.sync(a)
        try world.sync(b)
        return (world, try world.conflict(.duplicateApplication), held)
    }

    @Test("conflicts show, as text and as JSON, never prints a full identity number or phone number")
    func showMasks() throws {
        let (world, conflict, held) = try duplicateWorld()
        for arguments in [["show", String(conflict.id)], ["show", String(conflict.id), "--json"]] {
            let out = try world.cli(arguments)
            #expect(out.status == 0, "\(out.stderr)")
            for secret in [F.child.text, F.guardian.text, F.phone, F.otherPhone] {
                #expect(!out.stdout.contains(secret), "\(arguments) prints \(secret)")
            }
            #expect(out.stdout.contains(F.child.masked))
            #expect(out.stdout.contains(PhoneNumber.masked(F.otherPhone)))
            #expect(out.stdout.contains(held.lowercased))
        }
        let json = try JSONParser.parse(try world.cli(["show", String(conflict.id), "--json"]).stdout)
        #expect(json["conflict_id"]?.intValue == conflict.id)
        #expect(json["applications"]?.arrayValue?.count == 2)
    }

    @Test("conflicts list prints a table, one JSON document, or RFC 4180 CSV with a header and a UTF-8 BOM")
    func listFormats() throws {
        let (world, conflict, _) = try duplicateWorld()
        let text = try world.cli(["list"])
        #expect(text.status == 0)
        #expect(text.stdout.hasPrefix("ID  KIND"))
        #expect(text.stdout.contains("duplicate_application"))

        let json = try world.cli(["list", "--status", "all", "--format", "json"])
        let parsed = try JSONParser.parse(json.stdout)
        #expect(parsed["conflicts"]?.arrayValue?.first?["conflict_id"]?.intValue == conflict.id)

        let csv = try world.cli(["list", "--format", "csv", "--agency", F.agencyB])
        #expect(csv.stdout.hasPrefix("\u{FEFF}conflict_id,kind,status,detected_at,"))
        let lines = csv.stdout.components(separatedBy: "\r\n")
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(lines[1].hasPrefix("\(conflict.id),duplicate_application,open,"))
        #expect(lines[1].hasSuffix("\"kept \(String(conflict.applicationIDs[0].lowercased.prefix(8))), held \(String(conflict.applicationIDs[1].lowercased.prefix(8))): the earlier occurred_at stays\""))

        let none = try world.cli(["list", "--from", "2020-01-01", "--to", "2020-01-31"])
        #expect(none.stdout.hasPrefix("No open conflicts."))
        #expect(try world.cli(["list", "--kind", "nonsense"]).status == 64)
    }

    @Test("conflicts resolve takes exactly one decision; a second resolution exits 1 and says who resolved it")
    func resolveCommand() throws {
        let (world, conflict, held) = try duplicateWorld()
        #expect(try world.cli(["resolve", String(conflict.id)]).status == 64)
        #expect(try world.cli(["resolve", String(conflict.id), "--accept", "--dismiss"]).status == 64)
        let wrongKind = try world.cli(["resolve", String(conflict.id), "--dismiss"])
        #expect(wrongKind.status == 1)
        #expect(wrongKind.stderr.contains("duplicate_application"))

        let done = try world.cli(["resolve", String(conflict.id), "--keep", held.lowercased, "--by", "reviewer.li", "--note", "家长选择岳麓区"])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(done.stdout.contains("on_hold → submitted"))
        let again = try world.cli(["resolve", String(conflict.id), "--keep", held.lowercased])
        #expect(again.status == 1)
        #expect(again.stderr.contains("was already resolved on"))
        #expect(again.stderr.contains("by reviewer.li"))
        #expect(try world.conflict(.duplicateApplication).note == "家长选择岳麓区")
        try world.expectProjectionIsAFoldOfTheLedger()
    }

    @Test("--by defaults to the operating system user")
    func resolvedByDefaultsToTheUser() throws {
        let (world, conflict, held) = try duplicateWorld()
        let done = try world.cli(["resolve", String(conflict.id), "--keep", held.lowercased, "--json"])
        #expect(done.status == 0, "\(done.stderr)")
        let expected = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
        let resolvedBy = try world.conflict(.duplicateApplication).resolvedBy
        #expect(resolvedBy?.isEmpty == false)
        if let expected { #expect(resolvedBy == expected) }
        #expect(try JSONParser.parse(done.stdout)["resolved_by"]?.stringValue == resolvedBy)
    }
}
