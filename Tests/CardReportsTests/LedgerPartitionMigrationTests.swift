import CardCore
import CardDatabase
@testable import CardReports
import CardSync
import Foundation
import PostgresClient
import Testing
import TestSupport
import Workload

/// Migration 7 converts a ledger that a schema-6 centre filled, with its data in place: the
/// rows move into monthly partitions, their event ids into `event_ids`, and `db verify`, the
/// reports and the next syncs see the same centre as before. (In the reports' test target
/// because it compares the reports before and after.)
@Suite("Ledger partition migration")
struct LedgerPartitionMigrationTests {
    struct Reports: Equatable {
        var monthly: [MonthlyReport]
        var backlog: BacklogReport
        var throughput: ThroughputReport
    }

    static func reports(_ spec: WorkloadSpec, on db: Connection) throws -> Reports {
        var months: [MonthlyReport] = []
        var month = YearMonth(spec.start)
        let last = YearMonth(spec.end)
        while month <= last {
            var report = try runMonthlyReport(MonthlyReportQuery(month: month), on: db)
            report.generatedAt = report.periodStart  // the one field that differs between runs
            months.append(report)
            month = month.next
        }
        let asOf = PostgresTimestamp(microsecondsSince1970: spec.endInstant.microseconds)
        var backlog = try runBacklogReport(BacklogReportQuery(asOf: asOf), on: db)
        backlog.generatedAt = backlog.asOf
        var throughput = try runThroughputReport(ThroughputReportQuery(from: spec.start, to: spec.end), on: db)
        throughput.generatedAt = backlog.asOf
        return Reports(monthly: months, backlog: backlog, throughput: throughput)
    }

    /// Every ledger row, in ledger order, as one digest (all columns).
    static func ledgerDigest(_ db: Connection) throws -> String {
        try db.query("SELECT coalesce(md5(string_agg(l::text, E'\\n' ORDER BY l.ledger_id)), '') AS d FROM cardsync.ledger l")[0]
            .decode(String.self, column: "d")
    }

    static func count(_ db: Connection, _ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
        Int(try db.query(sql, parameters)[0].decode(Int64.self, at: 0))
    }

    static func sync(_ queue: QueueDirectory, _ uri: String) throws -> AgencySyncResult {
        try AgencySync(queue: queue, connection: try Connection(conninfo: uri), projection: try Connection(conninfo: uri), logger: .test).run()
    }

    @Test("the partitioned-ledger migration converts a schema-6 centre with data in place: db verify clean, reports equal, syncs go on")
    func migrationConvertsDataInPlace() throws {
        let home = try TemporaryDirectory(prefix: "cs-part-mig")
        let now = Timestamp.now.civilDate(offsetSeconds: 0)
        let today = CivilDate(year: now.year, month: now.month, day: now.day)!
        let spec = WorkloadSpec(agencies: 3, applications: 240, months: 3, seed: 13, faultRate: 0, end: today)
        let generated = home.url.appendingPathComponent("gen")
        try WorkloadGenerator.generate(spec: spec, into: generated)
        let queues = try FileManager.default.contentsOfDirectory(atPath: generated.path).sorted()
            .filter { FileManager.default.fileExists(atPath: generated.appendingPathComponent($0).appendingPathComponent("agency.json").path) }
            .map { QueueDirectory(generated.appendingPathComponent($0)) }
        try #require(queues.count == 3)
        let decisions = generated.appendingPathComponent("bureau-decisions.jsonl")
        // The first agency's queue before its first sync: synced after the migration, it pushes
        // every event again (a counter that lost its checkpoint).
        let lostCheckpoint = home.url.appendingPathComponent("lost")
        try FileManager.default.copyItem(at: queues[0].url, to: lostCheckpoint)

        // A centre as schema 6 left it: two agencies synced, the bureau's decisions imported
        // (those for the third agency's applications wait as pending), pulled back.
        let uri = try TestDatabase.migratedDatabase(throughVersion: 6)
        let db = try Connection(conninfo: uri)
        for queue in queues { try AgencyRegistry(connection: db).add(try queue.readAgency()) }
        for queue in queues.prefix(2) { _ = try Self.sync(queue, uri) }
        let imported = try BureauRecorder(connection: db, logger: .test).importFile(decisions)
        #expect(imported.refused.isEmpty)
        for queue in queues.prefix(2) { _ = try Self.sync(queue, uri) }
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.ledger WHERE outcome = 'pending'") > 0,
                "decisions for the third agency's applications should wait")
        // Recorded over the last 100 days (in ledger order), so the migration fills several months.
        try db.executeScript("""
            ALTER TABLE cardsync.ledger DISABLE TRIGGER ledger_append_only;
            UPDATE cardsync.ledger SET recorded_at = now() - interval '100 days'
                + ledger_id * (interval '100 days' / (SELECT max(ledger_id) + 1 FROM cardsync.ledger));
            ALTER TABLE cardsync.ledger ENABLE TRIGGER ledger_append_only;
            """)
        let events = try Self.count(db, "SELECT count(*) FROM cardsync.ledger")
        let digest = try Self.ledgerDigest(db)
        let before = try Self.reports(spec, on: db)
        #expect(before.monthly.contains { !$0.agencies.isEmpty })

        // Migration 7.
        let report = try Migrator(connection: db, logger: .test).migrate()
        #expect(report.applied == [7])
        #expect(report.rolesProblem == nil)
        #expect(try db.query("SELECT relkind::text FROM pg_class WHERE oid = 'cardsync.ledger'::regclass")[0].decode(String.self, at: 0) == "p")
        let partitions = try LedgerPartitions(connection: db).list()
        #expect(partitions.filter { $0.month != nil && $0.events > 0 }.count >= 4, "\(partitions)")
        #expect(partitions.last?.name == "ledger_default" && partitions.last?.events == 0)
        #expect(partitions.reduce(0) { $0 + $1.events } == Int64(events))
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.event_ids") == events)
        #expect(try Self.count(db, """
            SELECT count(*) FROM pg_constraint WHERE conname = 'deliveries_ledger_id_fkey' AND confrelid = 'cardsync.event_ids'::regclass
            """) == 1)
        #expect(try Self.ledgerDigest(db) == digest, "the ledger's rows, in ledger order, are unchanged")
        let verify = try ProjectionVerifier(connection: db).verify()
        #expect(verify.isClean, "\(verify.text)")
        #expect(verify.eventsReplayed == events)
        #expect(try Self.reports(spec, on: db) == before)
        _ = try DatabaseSelection(flag: uri).connect(logger: .test, migrate: false)  // the schema check of every command passes

        // Syncs go on: the third agency (its submissions take up the pending decisions in older
        // months), the lost checkpoint's re-push (all already present), and the pulls.
        _ = try Self.sync(queues[2], uri)
        let again = try Self.sync(QueueDirectory(lostCheckpoint), uri)
        #expect(again.pushed == 0 && again.alreadyPresent > 0, "\(again)")
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.conflicts WHERE kind = 'event_id_reuse'") == 0)
        for queue in queues { _ = try Self.sync(queue, uri) }
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.ledger") > events)
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.ledger_default") == 0)
        #expect(try Self.count(db, "SELECT count(*) FROM cardsync.event_ids")
                == (try Self.count(db, "SELECT count(*) FROM cardsync.ledger")))
        let after = try ProjectionVerifier(connection: db).verify()
        #expect(after.isClean, "\(after.text)")
    }
}
