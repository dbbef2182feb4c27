import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// The ledger partitioned by month (issue #13, migration 7): months made ahead, a DEFAULT
/// partition that takes what finds no month, event_id uniqueness in `event_ids`, and an old
/// month detached for archiving while sync, merge, reconcile and `db verify` go on working.
@Suite("Ledger partitions")
struct LedgerPartitionTests {
    /// `ledger_YYYY_MM` of the current UTC month and of the next.
    static func currentAndNextMonth(_ db: Connection) throws -> [String] {
        let row = try db.query("""
            SELECT 'ledger_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS this,
                   'ledger_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM') AS next
            """)[0]
        return [try row.decode(String.self, column: "this"), try row.decode(String.self, column: "next")]
    }

    /// Moves the application's ledger rows into `month` (YYYY-MM-DD) as if the centre had
    /// recorded them then: superuser work with the append-only rule off, for the test only.
    static func backdate(_ app: UUID, to day: String, on db: Connection) throws {
        try db.executeScript("ALTER TABLE cardsync.ledger DISABLE TRIGGER ledger_append_only")
        try db.execute("UPDATE cardsync.ledger SET recorded_at = $2::date::timestamp AT TIME ZONE 'UTC' WHERE application_id = $1",
                       [.uuid(app), .text(day)])
        try db.executeScript("ALTER TABLE cardsync.ledger ENABLE TRIGGER ledger_append_only")
    }

    @Test("a merge finds this month and the next partitioned, and a row that found no month moves into it when it is created")
    func monthsAheadAndDefaultPartition() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        for _ in 0..<3 { try outbox.submit() }
        try world.sync(queue)
        let partitions = LedgerPartitions(connection: try world.db)
        let names = try partitions.list().map(\.name)
        for name in try Self.currentAndNextMonth(try world.db) { #expect(names.contains(name), "\(names)") }
        #expect(names.last == "ledger_default")
        #expect(try partitions.list().first { $0.name == "ledger_default" }?.events == 0)
        #expect(try world.count("SELECT count(*) FROM cardsync.event_ids") == 3)

        // A row recorded in a month nobody created lands in the DEFAULT partition, never fails.
        let eventID = UUID()
        try world.db.execute("""
            INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, occurred_at, recorded_at, data, outcome)
            VALUES (nextval('cardsync.ledger_id_seq'), $1, $2, 'approved', 'bureau', now(), '2031-05-02 10:00+00', '{}', 'pending')
            """, [.uuid(eventID), .uuid(UUID())])
        #expect(try world.texts("SELECT tableoid::regclass::text FROM cardsync.ledger WHERE event_id = $1", [.uuid(eventID)])
                == ["cardsync.ledger_default"])
        #expect(try partitions.create(from: "2031-05", monthsAhead: 0) == 1)
        #expect(try world.texts("SELECT tableoid::regclass::text FROM cardsync.ledger WHERE event_id = $1", [.uuid(eventID)])
                == ["cardsync.ledger_2031_05"])
        #expect(try partitions.create(from: "2031-05", monthsAhead: 0) == 0, "creating is idempotent")
        // Still append-only on the moved row, and its event_id still unique.
        #expect(throws: PostgresError.self) { try world.db.execute("DELETE FROM cardsync.ledger WHERE event_id = $1", [.uuid(eventID)]) }
        #expect {
            try world.db.execute("""
                INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, occurred_at, data, outcome)
                VALUES (nextval('cardsync.ledger_id_seq'), $1, $2, 'approved', 'bureau', now(), '{}', 'pending')
                """, [.uuid(eventID), .uuid(UUID())])
        } throws: { error in
            (error as? PostgresError)?.isUniqueViolation == true
        }
        #expect(throws: LedgerPartitions.Failure.self) { try partitions.create(from: "2031-13", monthsAhead: 0) }
    }

    @Test("a detached old month leaves sync, merge, reconcile, a projection rebuild and db verify working")
    func detachedMonthLeavesSyncWorking() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let outbox = OutboxScript(queue)
        let closed = try outbox.submit()
        try outbox.withdraw(closed)
        let open = try outbox.submit()
        // The same queue before its first sync: syncing it later re-pushes every event, as a
        // counter whose checkpoint was lost does.
        let lostCheckpoint = try QueueFiles.copy(queue, to: world.path("lost-checkpoint"))
        try world.sync(queue)

        // The withdrawn application's whole history in an old month.
        let partitions = LedgerPartitions(connection: try world.db)
        try partitions.create(from: "2020-01", monthsAhead: 0)
        try Self.backdate(closed, to: "2020-01-15", on: try world.db)
        #expect(try partitions.blockers(month: "2020-01").isEmpty)
        let thisMonth = String(try Self.currentAndNextMonth(try world.db)[0].dropFirst("ledger_".count)).replacingOccurrences(of: "_", with: "-")
        let blockers = try partitions.blockers(month: thisMonth).map(\.reason)
        #expect(blockers.contains { $0.contains("not over") } && blockers.contains { $0.contains("not closed") }, "\(blockers)")

        #expect(try partitions.detach(month: "2020-01") == "cardsync_archive.ledger_2020_01")
        #expect(!(try partitions.list().map(\.name).contains("ledger_2020_01")))
        #expect(try partitions.archived() == [.init(month: "2020-01", table: "cardsync_archive.ledger_2020_01", events: 2)])
        #expect(try world.ledgerCount == 1)
        #expect(try world.count("SELECT count(*) FROM cardsync_archive.ledger_2020_01") == 2)
        #expect(try world.count("SELECT count(*) FROM cardsync.event_ids") == 3, "the keys outlive the month")
        try world.expectVerifyClean()
        #expect(throws: PostgresError.self) { try partitions.detach(month: "2020-01") }

        // Pushed again, the archived events are already present, not new and not reuses.
        let again = try world.sync(lostCheckpoint)
        #expect(again.pushed + again.alreadyPresent == 3 && again.alreadyPresent == 3, "\(again)")
        #expect(try world.ledgerCount == 1)
        #expect(try world.count("SELECT count(*) FROM cardsync.conflicts") == 0)

        // New events go on into the current month.
        let third = try outbox.submit()
        try world.sync(queue)
        #expect(try world.ledgerCount == 2)
        try world.expectVerifyClean()

        // Reconcile counts the archived events as the centre's.
        let reconcile = try AgencyReconcile(queue: queue, connection: try world.connect(), logger: .test).run()
        #expect(reconcile.eventsMissingCentrally.isEmpty && reconcile.eventsOnlyCentral.isEmpty, "\(reconcile)")

        // A projection rebuild (a sync that died between its two commits) keeps the archived
        // application as it was.
        try world.db.execute("UPDATE cardsync.projection_state SET through_ledger_id = through_ledger_id - 1")
        try outbox.verify(third)
        try world.sync(queue)
        #expect(try world.texts("SELECT status FROM cardsync.applications WHERE application_id = $1", [.uuid(closed)]) == ["withdrawn"])
        #expect(try world.texts("SELECT status FROM cardsync.applications WHERE application_id = $1", [.uuid(open)]) == ["submitted"])
        try world.expectVerifyClean()
    }

    @Test("agency roles read no partition, event_ids or archived month, and cannot create or detach partitions; the bureau's merge creates them")
    func agencyRolesAndPartitions() throws {
        let w = try IsolationWorld()
        let db = try w.world.db
        let months = try Self.currentAndNextMonth(db)
        try LedgerPartitions(connection: db).create(from: "2020-02", monthsAhead: 0)
        // Months created ahead by the bureau's merge (not the owner) exist and are the owner's.
        try db.executeScript("DROP TABLE cardsync.\(months[1])")
        let queue = try w.world.queue(w.agencyA)
        let outbox = OutboxScript(queue)
        try outbox.submit()
        try w.sync(queue, as: w.roleA)
        #expect(try w.merge().merged.accepted == 1)
        #expect(try w.world.count("SELECT count(*) FROM pg_class WHERE relname = $1 AND relispartition", [.text(months[1])]) == 1)

        let refused = [
            "SELECT count(*) FROM cardsync.\(months[0])",
            "SELECT count(*) FROM cardsync.ledger_default",
            "SELECT count(*) FROM cardsync.ledger_2020_02",
            "SELECT count(*) FROM cardsync.event_ids",
            "SELECT count(*) FROM cardsync.archived_events",
            "SELECT count(*) FROM cardsync.ledger_archive",
            "INSERT INTO cardsync.event_ids VALUES (gen_random_uuid(), 999)",
            "SELECT cardsync.ensure_ledger_partitions(now(), now())",
            "SELECT * FROM cardsync.ledger_month_blockers('2020-02-01')",
            "SELECT cardsync.detach_ledger_month('2020-02-01')",
            "SELECT cardsync.ledger_record_event_ids()",
        ]
        for sql in refused {
            let run = try w.psql(sql, as: w.roleA)
            #expect(run.status != 0, "psql as agency A's role ran: \(sql)")
            #expect(run.stderr.contains("permission denied"), "unclear refusal of \(sql): \(run.stderr)")
        }
        // The bureau's role may make months ahead, but not detach one (the owner's).
        #expect(try w.psql("SELECT cardsync.ensure_ledger_partitions(now(), now() + interval '2 months')", as: w.bureauRole).status == 0)
        #expect(try w.psql("SELECT cardsync.detach_ledger_month('2020-02-01')", as: w.bureauRole).status != 0)
        #expect(try w.psql("INSERT INTO cardsync.event_ids VALUES (gen_random_uuid(), 999)", as: w.bureauRole).status != 0)
        // Agency A still reads back its own deliveries only, through its functions.
        #expect(try w.psql("SELECT * FROM cardsync.agency_delivered_events(:'agency_a')", as: w.roleA).status == 0)
        #expect(try w.psql("SELECT * FROM cardsync.agency_delivered_events(:'agency_b')", as: w.roleA).status != 0)
        let check = try RoleCheck.read(on: db)
        #expect(check.problems.isEmpty, "\(check.problems)")
    }

    @Test("cardsync db partitions lists, creates ahead, and refuses to detach a month that is not over or has no partition")
    func partitionsCommand() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        try OutboxScript(queue).submit()
        try world.sync(queue)
        let scratch = world.path("cli")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let db = ["--database", world.uri]

        let created = try CardsyncCLI.run(["db", "partitions", "create", "--months", "3"] + db, scratch: scratch)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("Created 2 monthly partitions"), "\(created.stdout)")
        let listed = try CardsyncCLI.run(["db", "partitions", "--json"] + db, scratch: scratch)
        #expect(listed.status == 0, "\(listed.stderr)")
        let json = try JSONParser.parse(listed.stdout)
        let rows = json["partitions"]?.arrayValue ?? []
        #expect(rows.count == 5, "this month, 3 ahead and the default: \(listed.stdout)")
        #expect(rows.reduce(Int64(0)) { $0 + ($1["events"]?.intValue ?? 0) } == Int64(try world.ledgerCount))
        #expect(json["archived"]?.arrayValue?.isEmpty == true)
        let text = try CardsyncCLI.run(["db", "partitions"] + db, scratch: scratch)
        #expect(text.status == 0 && text.stdout.contains("default") && text.stdout.contains("No month has been detached"), "\(text.stdout)")

        let thisMonth = String(try Self.currentAndNextMonth(try world.db)[0].dropFirst("ledger_".count)).replacingOccurrences(of: "_", with: "-")
        let current = try CardsyncCLI.run(["db", "partitions", "detach", "--month", thisMonth] + db, scratch: scratch)
        #expect(current.status == 1 && current.stderr.contains("not over") && current.stderr.contains("not closed"), "\(current.stderr)")
        let missing = try CardsyncCLI.run(["db", "partitions", "detach", "--month", "2019-04", "--dry-run"] + db, scratch: scratch)
        #expect(missing.status == 1 && missing.stderr.contains("no partition attached"), "\(missing.stderr)")
        let bad = try CardsyncCLI.run(["db", "partitions", "detach", "--month", "2019-4"] + db, scratch: scratch)
        #expect(bad.status != 0 && bad.stderr.contains("YYYY-MM"), "\(bad.stderr)")
        let help = try CardsyncCLI.run(["db", "partitions", "--help"], scratch: scratch)
        #expect(help.stdout.contains("cardsync db partitions detach --month 2024-01 --dry-run"), "\(help.stdout)")
        #expect(try world.ledgerCount == 1)
    }
}
