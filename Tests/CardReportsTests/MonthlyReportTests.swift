import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

@Suite("Monthly issuance report (reports.md)")
struct MonthlyReportTests {
    let october = YearMonth(year: 2026, month: 10)!

    func report(_ f: ReportFixture, timezone: String = "Asia/Shanghai", agency: String? = nil, month: YearMonth? = nil,
                sla: Int = 30) throws -> MonthlyReport {
        try runMonthlyReport(MonthlyReportQuery(month: month ?? october, timezone: timezone, agency: agency, slaDays: sla),
                             on: f.connection)
    }

    func row(_ r: MonthlyReport, _ code: String) -> MonthlyFigures {
        r.agencies.first { $0.agencyCode == code }!.figures
    }

    @Test("every figure of every agency and the totals, Asia/Shanghai")
    func everyFigureShanghai() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f)
        #expect(r.agencies.map(\.agencyCode) == ["CS-A", "CS-B", "CS-Z"])
        #expect(r.agencies.map(\.agencyName) == [HandMade.aName, HandMade.bName, HandMade.zName])
        #expect(r.periodStart.rfc3339 == "2026-10-01T00:00:00+08:00")
        #expect(r.periodEnd.rfc3339 == "2026-11-01T00:00:00+08:00")

        var a = MonthlyFigures()
        a.received = 4            // a1 (at local midnight), a3, a8, a9
        a.duplicates = 0
        a.approved = 3            // a1, a2, a8 (a3's not_applied approval does not count)
        a.rejected = 1            // a3
        a.returned = 0
        a.withdrawn = 1           // a9
        a.cardsProduced = 2       // a1, a2
        a.cardsIssued = 2         // a1 (15 d), a10 (122 d); a8's pending issue does not count
        a.backlogStart = 4        // a1 (submitted at the instant), a2, a4, a10
        a.backlogEnd = 2          // a4, a8
        a.netFlow = 4 - 5         // closed: a1, a2, a3, a9, a10
        a.leadTimeDays = LeadTime(median: 68.5, p90: 15 + 0.9 * 107)
        a.agingEnd = AgingBuckets(days0to7: 0, days8to15: 0, days16to30: 1, days31plus: 1)
        a.slaBreaches = 2         // a4 open 91 days, a10 issued after 122 days
        a.conflictsOpened = 1     // c1
        a.conflictsResolved = 2   // c1, c2
        expectFigures(row(r, "CS-A"), a)

        var b = MonthlyFigures()
        b.received = 3            // a5 (last second), a7, a12; not a6 (next month's midnight)
        b.duplicates = 1          // a7
        b.approved = 1
        b.returned = 1
        b.withdrawn = 1           // a7, by the conflict's resolution
        b.cardsProduced = 1
        b.cardsIssued = 2         // a2 (owned by A, issued here, 20 d), a12 (11 d)
        b.backlogStart = 0
        b.backlogEnd = 2          // a5, and a6 submitted exactly at the end instant
        b.netFlow = 3 - 2         // closed: a7, a12
        b.leadTimeDays = LeadTime(median: 15.5, p90: 11 + 0.9 * 9)
        b.agingEnd = AgingBuckets(days0to7: 2)
        b.slaBreaches = 0
        b.conflictsOpened = 1
        b.conflictsResolved = 1
        expectFigures(row(r, "CS-B"), b)

        expectFigures(row(r, "CS-Z"), MonthlyFigures())

        var t = MonthlyFigures()
        t.received = 7; t.duplicates = 1; t.approved = 4; t.rejected = 1; t.returned = 1; t.withdrawn = 2
        t.cardsProduced = 3; t.cardsIssued = 4; t.backlogStart = 4; t.backlogEnd = 4; t.netFlow = 0
        t.leadTimeDays = LeadTime(median: 17.5, p90: 20 + 0.7 * 102)   // pooled [11, 15, 20, 122]
        t.agingEnd = AgingBuckets(days0to7: 2, days8to15: 0, days16to30: 1, days31plus: 1)
        t.slaBreaches = 2
        t.conflictsOpened = 1     // c1 involves A and B: once
        t.conflictsResolved = 2
        expectFigures(r.totals, t)
    }

    @Test("totals pool every card: the median is not the mean of the agencies' medians")
    func pooledMedian() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f)
        let meanOfMedians = (row(r, "CS-A").leadTimeDays.median! + row(r, "CS-B").leadTimeDays.median!) / 2
        #expect(abs(r.totals.leadTimeDays.median! - 17.5) < 1e-9)
        #expect(abs(meanOfMedians - 17.5) > 1)
    }

    @Test("a conflict between two agencies counts in both rows and once in the totals")
    func conflictCountsOnce() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f)
        #expect(row(r, "CS-A").conflictsOpened == 1 && row(r, "CS-B").conflictsOpened == 1)
        #expect(r.totals.conflictsOpened == 1)
    }

    @Test("an agency without activity is listed with zeros and null lead times")
    func zeroActivityAgency() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f)
        let z = row(r, "CS-Z")
        #expect(z == MonthlyFigures())
        #expect(z.leadTimeDays.median == nil && z.leadTimeDays.p90 == nil)
        let json = render(r, format: .json)
        #expect(json.contains(#""agency_code" : "CS-Z""#) || json.contains(#""agency_code": "CS-Z""#))
    }

    @Test("month boundaries in UTC: events at UTC midnight belong to the month that starts there")
    func boundariesUTC() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f, timezone: "UTC")
        #expect(r.periodStart.rfc3339 == "2026-10-01T00:00:00Z")
        #expect(r.periodEnd.rfc3339 == "2026-11-01T00:00:00Z")
        #expect(row(r, "CS-A").received == 3)        // a3, a8, a9; a1 is September, a13 is November
        #expect(row(r, "CS-B").received == 4)        // a5, a6, a7, a12
        #expect(row(r, "CS-A").backlogStart == 3)    // a10 closed exactly at the start instant: not open
        #expect(row(r, "CS-A").backlogEnd == 3)      // a4, a8, a13 (submitted at the end instant)
        #expect(row(r, "CS-A").cardsIssued == 2)     // a10 at 00:00Z on Oct 1 counts
        #expect(r.totals.received == 7)
    }

    @Test("month boundaries in America/New_York follow daylight saving time")
    func boundariesNewYork() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f, timezone: "America/New_York")
        #expect(r.periodStart.rfc3339 == "2026-10-01T00:00:00-04:00")
        #expect(r.periodEnd.rfc3339 == "2026-11-01T00:00:00-04:00")
        #expect(row(r, "CS-A").received == 4)        // a3, a8, a9, a13 (Oct 31 20:00 local)
        #expect(row(r, "CS-B").received == 4)
        let march = try report(f, timezone: "America/New_York", month: YearMonth(year: 2026, month: 3)!)
        #expect(march.periodStart.rfc3339 == "2026-03-01T00:00:00-05:00")
        #expect(march.periodEnd.rfc3339 == "2026-04-01T00:00:00-04:00")
        #expect(march.periodEnd.instant.microsecondsSince1970 - march.periodStart.instant.microsecondsSince1970
                == Int64(31 * 86400 - 3600) * 1_000_000)
    }

    @Test("--agency restricts the rows; the totals are that agency's")
    func singleAgency() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f, agency: "CS-B")
        #expect(r.agencies.map(\.agencyCode) == ["CS-B"])
        #expect(r.totals == r.agencies[0].figures)
        #expect(throws: ReportError.self) { try report(f, agency: "CS-NOPE") }
    }

    @Test("the SLA is configurable")
    func slaDays() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try report(f, sla: 14)
        // open: a4 (91) and a8 (27) > 14; cards: a1 (15) and a10 (122) > 14; B: a2 (20)
        #expect(row(r, "CS-A").slaBreaches == 4)
        #expect(row(r, "CS-B").slaBreaches == 1)
        #expect(r.totals.slaBreaches == 5)
    }

    @Test("an unknown time zone is a clear error")
    func unknownZone() throws {
        let f = try ReportFixture()
        #expect(throws: ReportError.self) { try report(f, timezone: "Mars/Olympus") }
    }

    @Test("one month's report uses the indexes, not a scan of the ledger or applications")
    func usesIndexes() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        // A few thousand rows so that the planner prefers indexes; then read the plan.
        try f.connection.execute("""
            INSERT INTO cardsync.applications (application_id, owning_agency, channel, child_id_number, status, version,
                form, submitted_at, closed_at, last_ledger_id)
            SELECT md5('x' || g)::uuid, 'CS-A', 'counter', lpad(g::text, 18, '0'), 'rejected', 1, '{}',
                   '2016-01-01T00:00:00Z'::timestamptz + g * interval '1 hour',
                   '2016-01-01T00:00:00Z'::timestamptz + g * interval '1 hour' + interval '2 days', 1
            FROM generate_series(1, 20000) g
            """)
        try f.connection.execute("""
            INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq, occurred_at, data, outcome)
            SELECT 1000 + g, md5('e' || g)::uuid, md5('x' || g)::uuid, 'submitted', 'agency', 'CS-A', 1000 + g,
                   '2016-01-01T00:00:00Z'::timestamptz + g * interval '1 hour', '{}', 'applied'
            FROM generate_series(1, 20000) g
            """)
        try f.connection.execute("ANALYZE")
        let bounds = (ReportFixture.at("2026-09-30T16:00:00Z"), ReportFixture.at("2026-10-31T16:00:00Z"))
        let plan = try f.connection.query("EXPLAIN \(unescaped: monthlyReportSQL)",
                                          [bounds.0.postgresValue, bounds.1.postgresValue, .int(30), .null])
            .map { try $0.decode(String.self, at: 0) }.joined(separator: "\n")
        // The ledger is partitioned by month (migration 7): a scan of an empty partition (the
        // next month's, the default) costs nothing and is what the planner picks for it.
        let ledgerScans = plan.split(separator: "\n").filter { $0.contains("Seq Scan on ledger") && !$0.contains("cost=0.00..0.00 ") }
        #expect(ledgerScans.isEmpty, "\(plan)")
        #expect(!plan.contains("Seq Scan on applications"), "\(plan)")
    }

    func expectFigures(_ actual: MonthlyFigures, _ expected: MonthlyFigures, sourceLocation: SourceLocation = #_sourceLocation) {
        var a = actual, e = expected
        #expect(close(a.leadTimeDays.median, e.leadTimeDays.median), "median \(String(describing: a.leadTimeDays.median))", sourceLocation: sourceLocation)
        #expect(close(a.leadTimeDays.p90, e.leadTimeDays.p90), "p90 \(String(describing: a.leadTimeDays.p90))", sourceLocation: sourceLocation)
        a.leadTimeDays = LeadTime()
        e.leadTimeDays = LeadTime()
        #expect(a == e, sourceLocation: sourceLocation)
    }
}

func close(_ a: Double?, _ b: Double?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case (let x?, let y?): return abs(x - y) < 1e-9
    default: return false
    }
}
