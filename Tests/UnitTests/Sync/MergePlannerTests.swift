import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// The merge's planner is pure: the same state in gives the same decisions out, with no database.
@Suite("Merge planner")
struct MergePlannerTests {
    func submission(agency: String, child: Int, ledgerID: Int64, minute: Int) -> LedgerEvent {
        LedgerEvent(ledgerID: ledgerID, eventID: UUID(), applicationID: UUID(), type: .submitted, agencyCode: agency,
                    seq: ledgerID, occurredAt: SyncFixture.at(minutes: minute), data: SyncFixture.submittedData(child: child))
    }

    @Test("one child submitted at two agencies in one batch: one active application, one on hold, one conflict")
    func duplicateAcrossAgencies() {
        let first = submission(agency: "CS-FR-001", child: 7, ledgerID: 1, minute: 1)
        let second = submission(agency: "CS-TX-001", child: 7, ledgerID: 2, minute: 2)
        let plan = MergePlanner.plan([first, second], reuseConflicts: [], store: LifecycleStore(), now: .now,
                                     firstSystemLedgerID: 3)
        #expect(plan.effects.conflicts.count == 1)
        #expect(plan.effects.conflicts.first?.kind == .duplicateApplication)
        let statuses = plan.changed.map(\.status)
        #expect(statuses.filter { $0 == .submitted }.count == 1)
        #expect(statuses.filter { $0 == .onHold }.count == 1)
        #expect(plan.store[first.applicationID]?.status == .submitted, "the earlier submission stays active")
        // System events took ids from 3 on, after the batch's own.
        #expect((plan.lastLedgerID ?? 0) >= 3)
        // The same input plans the same way again.
        let again = MergePlanner.plan([first, second], reuseConflicts: [], store: LifecycleStore(), now: .now,
                                      firstSystemLedgerID: 3)
        func byApplication(_ p: MergePlanner.Plan) -> [UUID: ApplicationStatus] {
            Dictionary(uniqueKeysWithValues: p.changed.map { ($0.applicationID, $0.status) })
        }
        #expect(byApplication(again) == byApplication(plan))
        #expect(again.effects.newEvents.map(\.event.ledgerID) == plan.effects.newEvents.map(\.event.ledgerID))
    }
}
