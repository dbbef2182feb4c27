import CardBench
import CardCore
import CardDatabase
@testable import CardReports
import Foundation
import PostgresClient
import Testing
import TestSupport

@Suite("Report benchmark")
struct BenchmarkTests {
    static func migratedDatabase(_ name: String) throws -> Connection {
        let connection = try TestDatabase.connect()
        _ = try Migrator(connection: connection, logger: .test).migrate()
        return connection
    }

    @Test("the benchmark loads consistent data, keeps the migrated indexes, and measures both sizes")
    func smallRun() throws {
        var options = ReportBenchmark.Options()
        options.applications = 3000
        options.agencies = 4
        options.runs = 2
        var lines: [String] = []
        let result = try ReportBenchmark(options: options).run(database: Self.migratedDatabase, progress: { lines.append($0) })
        #expect(result.large.applications == 3000 && result.small.applications == 300)
        #expect(result.large.ledgerEvents > 3000 * 4)
        #expect(result.large.runsMilliseconds.count == 2 && result.large.medianMilliseconds > 0)
        #expect(result.ratio > 0)
        #expect(!lines.isEmpty)
        let json = try JSONParser.parse(result.json)
        #expect(json["large"]?["applications"]?.intValue == 3000)
        #expect(result.text.contains("growth large/small"))
    }

    @Test("the loaded data is consistent: the projection's closing times match the ledger's terminal events")
    func consistentData() throws {
        let c = try Self.migratedDatabase("x")
        var options = ReportBenchmark.Options()
        options.agencies = 5
        let bench = ReportBenchmark(options: options)
        let end = try c.query("SELECT now() AS now")[0].decode(PostgresTimestamp.self, column: "now")
        let indexesSQL: PostgresQuery = "SELECT indexname || ': ' || indexdef AS i FROM pg_indexes WHERE schemaname = 'cardsync' ORDER BY 1"
        let before = try c.query(indexesSQL).map { try $0.decode(String.self, column: "i") }
        _ = try bench.load(c, applications: 5000, years: 2, end: end)
        let after = try c.query(indexesSQL).map { try $0.decode(String.self, column: "i") }
        #expect(before == after)   // every index dropped for the load was rebuilt as migrated
        #expect(before.count > 10)
        let mismatches = try c.query("""
            SELECT count(*) AS n FROM cardsync.applications a
            WHERE a.closed_at IS DISTINCT FROM (
                SELECT max(l.occurred_at) FROM cardsync.ledger l
                WHERE l.application_id = a.application_id AND l.type IN ('card_issued', 'rejected', 'withdrawn'))
              AND NOT (a.status = 'withdrawn' AND EXISTS (
                SELECT 1 FROM cardsync.conflicts k WHERE k.detail->>'held' = a.application_id::text AND k.resolved_at = a.closed_at))
            """)[0].decode(Int.self, column: "n")
        #expect(mismatches == 0)
        let issuedWithoutProduction = try c.query("""
            SELECT count(*) AS n FROM cardsync.ledger i
            WHERE i.type = 'card_issued' AND NOT EXISTS (
                SELECT 1 FROM cardsync.ledger p WHERE p.application_id = i.application_id AND p.type = 'card_produced'
                  AND p.occurred_at < i.occurred_at)
            """)[0].decode(Int.self, column: "n")
        #expect(issuedWithoutProduction == 0)
        let open = try c.query("SELECT count(*) AS n FROM cardsync.applications WHERE closed_at IS NULL")[0].decode(Int.self, column: "n")
        #expect(open > 0 && open < 1000)
    }

    /// Opt-in: `CARDSYNC_REPORT_BENCH=2000000 swift test --filter BenchmarkTests` prints the full benchmark.
    @Test("full-size benchmark (opt-in)", .enabled(if: ProcessInfo.processInfo.environment["CARDSYNC_REPORT_BENCH"] != nil))
    func fullSize() throws {
        var options = ReportBenchmark.Options()
        options.applications = Int(ProcessInfo.processInfo.environment["CARDSYNC_REPORT_BENCH"] ?? "") ?? 2_000_000
        let result = try ReportBenchmark(options: options).run(database: Self.migratedDatabase, progress: { print("bench: " + $0) })
        print(result.text)
        print(result.json)
    }
}
