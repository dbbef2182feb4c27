import CardCore
import Foundation
import Testing
@testable import CardSync

/// The lifecycle fold on its own, no database: one test per rule of ../shared/spec/lifecycle.md.
@Suite struct LifecycleEngineTests {
    /// Builds events in ledger order and folds them.
    struct Fold {
        var engine = LifecycleEngine(store: LifecycleStore(), now: Timestamp(microseconds: 0)) { 1_000_000 }
        var nextID: Int64 = 1

        mutating func apply(_ type: EventType, _ app: UUID, agency: String? = "CS-A-001", at day: Int = 1,
                            data: JSONValue = [:]) -> Int64 {
            let id = nextID
            nextID += 1
            engine.ingest(LedgerEvent(
                ledgerID: id, eventID: UUID(), applicationID: app, type: type,
                agencyCode: type.origin == .agency ? agency : nil, seq: type.origin == .agency ? id : nil,
                occurredAt: Timestamp(microseconds: Int64(day) * 86_400_000_000 + id, offsetSeconds: 28_800), data: data))
            return id
        }

        mutating func submit(_ app: UUID, child: String = "430102201903150015", agency: String = "CS-A-001", at day: Int = 1) -> Int64 {
            apply(.submitted, app, agency: agency, at: day, data: [
                "channel": "counter",
                "child": ["name": "王小明", "id_number": .string(child), "birth_date": "2019-03-15", "sex": "M"],
                "guardian": ["name": "王建国", "id_number": "430102198801010011", "relationship": "father", "phone": "13812345678"],
                "household": ["register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"],
                "documents": ["birth_certificate", "household_register", "guardian_id"],
            ])
        }

        func app(_ id: UUID) -> ApplicationState? { engine.store[id] }

        func outcome(_ ledgerID: Int64) -> EventOutcome? {
            engine.effects.newEvents.first { $0.event.ledgerID == ledgerID }?.outcome
        }

        func conflicts(_ kind: ConflictKind) -> [ConflictDraft] { engine.effects.conflicts.filter { $0.kind == kind } }
    }

    @Test func submittedMakesVersionOne() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        #expect(f.app(a)?.status == .submitted)
        #expect(f.app(a)?.version == 1)
    }

    @Test func eachAppliedEventRaisesTheVersionByOne() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.documentsVerified, a, data: ["documents": ["photo"]])
        _ = f.apply(.approved, a)
        #expect(f.app(a)?.version == 3)
        #expect(f.app(a)?.status == .approved)
        #expect(f.app(a)?.verifiedDocuments == ["photo"])
    }

    @Test func anEventWhosePrerequisiteHasNotArrivedIsPendingAndAppliesInOrderWhenItArrives() {
        var f = Fold()
        let a = UUID()
        let approved = f.apply(.approved, a)
        let produced = f.apply(.cardProduced, a, data: ["card_number": "A12345678"])
        #expect(f.outcome(approved) == .pending)
        #expect(f.outcome(produced) == .pending)
        _ = f.submit(a)
        #expect(f.outcome(approved) == .applied)
        #expect(f.outcome(produced) == .applied)
        #expect(f.app(a)?.status == .produced)
        #expect(f.app(a)?.cardNumber == "A12345678")
    }

    @Test func cardIssuedBeforeCardProducedWaitsThenApplies() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        let issued = f.apply(.cardIssued, a, data: ["card_number": "A1", "collected_by": ["name": "王建国", "relationship": "father"]])
        #expect(f.outcome(issued) == .pending)
        _ = f.apply(.cardProduced, a, data: ["card_number": "A1"])
        #expect(f.outcome(issued) == .applied)
        #expect(f.app(a)?.status == .issued)
        #expect(f.app(a)?.closedAt != nil)
        #expect(f.conflicts(.invalidTransition).isEmpty)
    }

    @Test func cardIssuedWithTheWrongCardNumberIsAnInvalidTransition() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        _ = f.apply(.cardProduced, a, data: ["card_number": "A1"])
        let issued = f.apply(.cardIssued, a, data: ["card_number": "B2"])
        #expect(f.outcome(issued) == .notApplied)
        #expect(f.conflicts(.invalidTransition).count == 1)
        #expect(f.app(a)?.status == .produced)
    }

    @Test func onceDispatchedOnlyTheAgencyTheCardWentToCanIssueIt() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        _ = f.apply(.cardProduced, a, data: ["card_number": "A1"])
        _ = f.apply(.cardDispatched, a, data: ["agency_code": "CS-B-001"])
        let wrong = f.apply(.cardIssued, a, agency: "CS-A-001", data: ["card_number": "A1"])
        #expect(f.outcome(wrong) == .notApplied)
        let right = f.apply(.cardIssued, a, agency: "CS-B-001", data: ["card_number": "A1"])
        #expect(f.outcome(right) == .applied)
        #expect(f.app(a)?.issuedBy == "CS-B-001")
    }

    @Test func approvedAfterRejectedIsAnInvalidTransition() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.rejected, a, data: ["reason": "documents forged"])
        let approved = f.apply(.approved, a)
        #expect(f.outcome(approved) == .notApplied)
        #expect(f.app(a)?.status == .rejected)
        #expect(f.conflicts(.invalidTransition).first?.detail["event_type"] == "approved")
    }

    @Test func amendedInReturnedMovesTheApplicationBackToSubmitted() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.returned, a, data: ["reason": "photo missing"])
        _ = f.apply(.amended, a, data: ["base_version": 2, "changes": ["documents": ["birth_certificate", "household_register", "guardian_id", "photo"]]])
        #expect(f.app(a)?.status == .submitted)
    }

    @Test func onlyTheGuardianPhoneMayBeAmendedOnceApproved() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        let phone = f.apply(.amended, a, data: ["base_version": 2, "changes": ["guardian.phone": "13900001111"]])
        #expect(f.outcome(phone) == .applied)
        #expect(f.app(a)?.formValue(at: "guardian.phone") == "13900001111")
        let name = f.apply(.amended, a, data: ["base_version": 3, "changes": ["child.name": "王小红"]])
        #expect(f.outcome(name) == .notApplied)
    }

    @Test func withdrawnAppliesInAnyNonTerminalStatusAndNotAfter() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        let w = f.apply(.withdrawn, a, data: ["reason": "moved"])
        #expect(f.outcome(w) == .applied)
        #expect(f.app(a)?.status == .withdrawn)
        let again = f.apply(.withdrawn, a, data: ["reason": "again"])
        #expect(f.outcome(again) == .notApplied)
    }

    @Test func concurrentAmendmentLaterOccurredAtWinsPerFieldAndKeepsTheLosingValues() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        // Two agencies amend from version 1; the second arrives later but occurred earlier.
        _ = f.apply(.amended, a, at: 5, data: ["base_version": 1, "changes": ["guardian.phone": "13900000005", "household.address": "新地址5"]])
        _ = f.apply(.amended, a, at: 3, data: ["base_version": 1, "changes": ["guardian.phone": "13900000003", "child.name": "王小红"]])
        let app = f.app(a)!
        #expect(app.formValue(at: "guardian.phone") == "13900000005", "the later occurred_at wins")
        #expect(app.formValue(at: "child.name") == "王小红", "an uncontested field applies")
        #expect(app.formValue(at: "household.address") == "新地址5")
        let conflict = f.conflicts(.concurrentAmendment)
        #expect(conflict.count == 1)
        #expect(conflict.first?.isOpen == false)
        #expect(conflict.first?.outcome == .autoMerged)
        #expect(conflict.first?.detail["losing_changes"]?["guardian.phone"] == "13900000003")
        #expect(app.version == 3)
    }

    @Test func duplicateApplicationTheEarlierOccurredAtStaysTheOtherGoesOnHold() {
        var f = Fold()
        let first = UUID(), second = UUID()
        _ = f.submit(second, agency: "CS-B-001", at: 3)
        _ = f.submit(first, agency: "CS-A-001", at: 2) // arrives later, happened earlier
        #expect(f.app(first)?.status == .submitted)
        #expect(f.app(second)?.status == .onHold)
        #expect(f.app(second)?.heldStatus == .submitted)
        let conflict = f.conflicts(.duplicateApplication)
        #expect(conflict.count == 1)
        #expect(conflict.first?.detail["held"]?.stringValue == second.lowercased)
        #expect(Set(conflict.first?.agencyCodes ?? []) == ["CS-A-001", "CS-B-001"])
        // The held application's agency is told through a conflict_opened system event.
        #expect(f.engine.effects.newEvents.contains { $0.event.type == .conflictOpened && $0.event.applicationID == second })
    }

    @Test func theConflictNotificationIsNamedAfterTheConflictWhicheverSubmissionArrivesFirst() {
        // A restored centre re-merging the same submissions must write the notification under
        // the event_id the agency's inbox already holds, also when they come in another order.
        let first = UUID(), second = UUID()
        func notification(_ order: [(UUID, String, Int)]) -> LedgerEvent? {
            var f = Fold()
            for (app, agency, day) in order { _ = f.submit(app, agency: agency, at: day) }
            let opened = f.engine.effects.newEvents.map(\.event).filter { $0.type == .conflictOpened }
            #expect(opened.count == 1)
            return opened.first
        }
        let a = notification([(second, "CS-B-001", 3), (first, "CS-A-001", 2)])
        let b = notification([(first, "CS-A-001", 2), (second, "CS-B-001", 3)])
        #expect(a?.eventID != nil && a?.eventID == b?.eventID)
        #expect(a?.applicationID == second)
        // Another pair of applications, another id.
        let c = notification([(UUID(), "CS-B-001", 3), (first, "CS-A-001", 2)])
        #expect(c?.eventID != a?.eventID)
    }

    @Test func duplicateApplicationAnExistingApplicationPastSubmittedStays() {
        var f = Fold()
        let first = UUID(), second = UUID()
        _ = f.submit(first, agency: "CS-B-001", at: 5)
        _ = f.apply(.approved, first)
        _ = f.submit(second, agency: "CS-A-001", at: 1)
        #expect(f.app(first)?.status == .approved)
        #expect(f.app(second)?.status == .onHold)
    }

    @Test func duplicateApplicationTiesGoToTheLowerAgencyCode() {
        var f = Fold()
        let a = UUID(), b = UUID()
        // Same instant: build both events by hand with equal occurred_at.
        let when = Timestamp(microseconds: 86_400_000_000, offsetSeconds: 28_800)
        for (app, agency, id) in [(b, "CS-B-001", Int64(1)), (a, "CS-A-001", Int64(2))] {
            f.engine.ingest(LedgerEvent(ledgerID: id, eventID: UUID(), applicationID: app, type: .submitted, agencyCode: agency,
                                        seq: id, occurredAt: when, data: ["channel": "counter", "child": ["id_number": "430102201903150015"]]))
        }
        #expect(f.app(a)?.status == .submitted)
        #expect(f.app(b)?.status == .onHold)
    }

    @Test func aBureauDecisionForAnApplicationOnHoldWaitsForTheConflictDecision() {
        var f = Fold()
        let kept = UUID(), held = UUID()
        _ = f.submit(kept, agency: "CS-A-001", at: 1)
        _ = f.submit(held, agency: "CS-B-001", at: 2)
        let approved = f.apply(.approved, held)
        #expect(f.outcome(approved) == .pending)
        // The reviewer keeps the held one: the other is withdrawn first, then the kept one returns.
        _ = f.apply(.conflictResolved, kept, data: ["conflict_id": 1, "outcome": "keep", "action": "withdraw"])
        _ = f.apply(.conflictResolved, held, data: ["conflict_id": 1, "outcome": "keep", "action": "keep"])
        #expect(f.app(kept)?.status == .withdrawn)
        #expect(f.outcome(approved) == .applied)
        #expect(f.app(held)?.status == .approved)
    }

    @Test func aLateDispatchRecordForACardTheSameAgencyIssuedIsNotAConflict() {
        var f = Fold()
        let a = UUID()
        _ = f.submit(a)
        _ = f.apply(.approved, a)
        _ = f.apply(.cardProduced, a, data: ["card_number": "A1"])
        _ = f.apply(.cardIssued, a, agency: "CS-A-001", data: ["card_number": "A1"])
        let late = f.apply(.cardDispatched, a, data: ["agency_code": "CS-A-001"])
        #expect(f.outcome(late) == .applied)
        #expect(f.app(a)?.status == .issued)
        #expect(f.conflicts(.invalidTransition).isEmpty)
        let elsewhere = UUID()
        _ = f.submit(elsewhere, child: "430102201903150023")
        _ = f.apply(.approved, elsewhere)
        _ = f.apply(.cardProduced, elsewhere, data: ["card_number": "A2"])
        _ = f.apply(.cardIssued, elsewhere, agency: "CS-A-001", data: ["card_number": "A2"])
        let wrong = f.apply(.cardDispatched, elsewhere, data: ["agency_code": "CS-B-001"])
        #expect(f.outcome(wrong) == .notApplied)
    }

    @Test func replayingTheSameEventsGivesTheSameProjection() {
        var f = Fold()
        let a = UUID(), b = UUID()
        _ = f.submit(a)
        _ = f.submit(b, agency: "CS-B-001", at: 2)
        _ = f.apply(.approved, a)
        _ = f.apply(.amended, a, data: ["base_version": 1, "changes": ["guardian.phone": "13900000001"]])
        let events = f.engine.effects.newEvents.map(\.event)
        var replay = LifecycleEngine(store: LifecycleStore(), now: Timestamp(microseconds: 0)) { 0 }
        for e in events where e.type != .conflictOpened { replay.replay(e) }
        #expect(replay.store.applications == f.engine.store.applications)
    }
}
