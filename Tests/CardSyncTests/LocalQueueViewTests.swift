import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// `queue status` counts what the centre will hold: a well-formed line that sync quarantined
/// (a `submitted` with a wrong check digit, say) is a quarantined line, not an application.
struct LocalQueueViewTests {
    @Test func aQuarantinedSubmissionIsNotCountedAsAnApplication() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let script = OutboxScript(queue)
        try script.submit()
        let wrongCheckDigit = SyncFixture.submittedData(child: 2).setting("child.id_number", to: "430102201903150010")
        _ = try script.append("submitted", app: UUID(), data: wrongCheckDigit)
        let result = try world.sync(queue)
        #expect(result.quarantined == 1)
        #expect(result.pushed == 1)

        let view = try LocalQueueView.load(queue)
        #expect(view.quarantinedLines == 1)
        #expect(view.byStatus.values.reduce(0, +) == 1, "\(view.byStatus)")
        #expect(view.byStatus[.submitted] == 1)
        #expect(view.unsyncedLines == 0)
    }
}
