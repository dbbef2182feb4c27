import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// The ledger and the projection name agencies without per-row foreign keys (they cost a third
/// of a bulk sync's database time): the merge checks a batch's agency codes, and agencies can
/// be neither deleted nor renamed.
@Suite("Agency integrity")
struct AgencyIntegrityTests {
    static func submission(agency: String) -> LedgerEvent {
        LedgerEvent(ledgerID: 0, eventID: UUID(), applicationID: UUID(), type: .submitted, agencyCode: agency, seq: 1,
                    occurredAt: SyncFixture.at(minutes: 1), data: SyncFixture.submittedData(child: 1))
    }

    @Test("a batch naming an agency that is not registered is refused whole, with the agency's code and what to do")
    func unregisteredAgencyRefused() throws {
        let world = try SyncWorld()
        try world.register(SyncFixture.agency)
        let events = [Self.submission(agency: SyncFixture.agency.code), Self.submission(agency: "CS-XX-999")]
        #expect {
            try CentralMerge(connection: try world.db, logger: .test).merge(events)
        } throws: { error in
            "\(error)".contains("agency CS-XX-999 is not registered") && "\(error)".contains("cardsync agency add")
        }
        #expect(try world.ledgerCount == 0)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications") == 0)
        #expect(try ProjectionWatermark.read(on: try world.db) == ProjectionWatermark.Reading(through: 0, last: 0))
    }

    @Test("a registered agency can be neither deleted nor renamed once it exists")
    func agenciesArePermanent() throws {
        let world = try SyncWorld()
        try world.register(SyncFixture.agency)
        for statement: PostgresQuery in ["DELETE FROM cardsync.agencies WHERE code = $1",
                          "UPDATE cardsync.agencies SET code = 'CS-FR-999' WHERE code = $1"] {
            #expect {
                try world.db.execute(statement, [.text(SyncFixture.agency.code)])
            } throws: { error in
                (error as? PostgresError)?.sqlState == "23001" && "\(error)".contains("cannot be deleted or renamed")
            }
        }
        try world.db.execute("UPDATE cardsync.agencies SET name = '芙蓉区社保卡服务中心' WHERE code = $1", [.text(SyncFixture.agency.code)])
        #expect(try world.texts("SELECT name FROM cardsync.agencies") == ["芙蓉区社保卡服务中心"])
    }
}
