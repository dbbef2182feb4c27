import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
import Workload
@testable import CardSync

/// A merge loads the state its batch touches in several look-ups, on two connections when it
/// has them. Whatever the split, the store must hold exactly what the SQL definition says:
/// the applications asked for by id, the open applications of the children asked for, and the
/// pending events of all of those, plus the events waiting for the applications the batch submits.
@Suite("State loading")
struct BatchStateLoaderTests {
    @Test("the look-ups on one connection and on two find exactly the applications and pending events they should, each once")
    func loadsWhatTheDefinitionSays() throws {
        let world = try SyncWorld()
        // A generated city: applications of three agencies, cards collected before the bureau's
        // decisions arrive (pending events), duplicate submissions across agencies.
        let workload = world.path("workload")
        let spec = WorkloadSpec(agencies: 3, applications: 300, months: 3, seed: 5, faultRate: 0.02,
                                end: CivilDate(year: 2025, month: 7, day: 1)!)
        let summary = try WorkloadGenerator.generate(spec: spec, into: workload)
        for code in summary.agencies.map(\.agency.code) {
            try world.sync(QueueDirectory(path: workload.appendingPathComponent(code).path), batchSize: 70)
        }
        // Events that arrived before their applications (held, marked as awaiting them).
        let queue = try world.queue()
        let outbox = OutboxScript(queue, firstChild: 9_000)
        let unseen = [UUID(), UUID(), UUID()]
        for app in unseen { try outbox.verify(app) }
        try world.sync(queue)
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE awaits_application AND application_id = ANY($1::uuid[])",
                                [.uuidArray(unseen)]) == unseen.count)
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE outcome = 'pending' AND NOT awaits_application") > 0,
                "the scenario needs pending events of existing applications")

        let db = try world.db
        let allIDs = try world.texts("SELECT application_id::text FROM cardsync.applications ORDER BY 1").compactMap(UUID.init)
        let children = try world.texts("""
            SELECT child_id_number FROM cardsync.applications GROUP BY 1 HAVING count(*) > 1
            UNION SELECT child_id_number FROM cardsync.applications ORDER BY 1 LIMIT 60
            """)
        #expect(allIDs.count > 200)
        // Every other application by id, plus one never seen; the awaited ones as submitted here.
        let ids = allIDs.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) + [UUID()]
        let submittedHere = unseen + [UUID()]

        let expectedApps = Set(try world.texts("""
            SELECT application_id::text FROM cardsync.applications
            WHERE application_id = ANY($1::uuid[])
               OR (child_id_number = ANY($2::text[])
                   AND status IN ('submitted', 'returned', 'approved', 'produced', 'dispatched', 'on_hold'))
            """, [.uuidArray(ids), .textArray(children)]).compactMap(UUID.init))
        let expectedPending = Set(try world.texts("""
            SELECT ledger_id::text FROM cardsync.ledger
            WHERE outcome = 'pending'
              AND (application_id = ANY($1::uuid[]) OR (awaits_application AND application_id = ANY($2::uuid[])))
            """, [.uuidArray(Array(expectedApps) + ids), .uuidArray(submittedHere)]).compactMap(Int64.init))
        #expect(expectedPending.count > unseen.count)

        let helper = try world.connect()
        for withHelper in [false, true] {
            let store = try db.withTransaction { conn in
                try KeyedPlans.require(on: conn)
                return try BatchStateLoader.load(applications: ids, submittedHere: submittedHere, children: children,
                                            helper: withHelper ? helper : nil, on: conn)
            }
            #expect(Set(store.applications.keys) == expectedApps, "helper: \(withHelper)")
            let held = store.pending.values.flatMap { $0.map(\.ledgerID) }
            #expect(held.count == Set(held).count, "an event held twice (helper: \(withHelper))")
            #expect(Set(held) == expectedPending, "helper: \(withHelper)")
            for (id, events) in store.pending {
                #expect(events.allSatisfy { $0.applicationID == id })
                #expect(events.map(\.ledgerID) == events.map(\.ledgerID).sorted(), "pending events out of ledger order")
            }
        }
        // The helper connection is left idle, outside any transaction, for the projection's writes.
        #expect(try helper.query("SELECT 1 AS one").count == 1)
        try world.expectVerifyClean()
    }

    @Test("the active statuses bound as a text[] parameter still let the planner use the one-active-per-child index")
    func boundActiveStatusesUseThePartialIndex() throws {
        let db = try TestDatabase.connect()
        _ = try Migrator(connection: db, logger: .test).migrate()
        // Sequential scans off: if the planner could not prove the bound predicate implies the
        // index's, the plan would still be a (disabled) sequential scan.
        try db.executeScript("SET enable_seqscan = off; SET enable_bitmapscan = off")
        let plan = try db.query("""
            EXPLAIN SELECT application_id FROM cardsync.applications
            WHERE status = ANY($2::text[]) AND child_id_number = ANY($1::text[])
            """, [.textArray(["430102201903150011"]), .textArray(ApplicationStatus.activeNames)])
            .map { try $0.decode(String.self, at: 0) }.joined(separator: "\n")
        #expect(plan.contains("applications_one_active_per_child"), "\(plan)")
    }
}
