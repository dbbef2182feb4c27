import CardCore
import Testing

/// The active statuses are one list, derived from the enum; the centre's partial unique index
/// (migration 1) was written with the same list, and queries that must match it use this one.
struct ApplicationStatusTests {
    @Test func activeMeansOpenAndNotOnHold() {
        #expect(ApplicationStatus.active == [.submitted, .returned, .approved, .produced, .dispatched])
        #expect(ApplicationStatus.activeNames == ["submitted", "returned", "approved", "produced", "dispatched"])
        #expect(!ApplicationStatus.onHold.isActive)
        #expect(ApplicationStatus.allCases.filter(\.isTerminal).allSatisfy { !$0.isActive })
    }
}
