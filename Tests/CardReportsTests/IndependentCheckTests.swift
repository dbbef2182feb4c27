import CardBench
import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

/// Recomputes the monthly figures a second way: plain SELECTs of the rows, folded in Swift with
/// month boundaries computed in Swift, over a generated dataset with invalid and pending events mixed in.
@Suite("Independent check of the monthly report")
struct IndependentCheckTests {
    struct App { var owner: String; var submitted: Int64; var closed: Int64?; var status: String }
    struct Event { var app: String; var type: String; var at: Int64; var agency: String?; var outcome: String }
    struct Conflict { var id: Int64; var codes: [String]; var held: String?; var kind: String; var detected: Int64; var resolved: Int64? }

    static let micro: Int64 = 1_000_000
    static let day: Int64 = 86_400 * micro

    @Test("randomized dataset: SQL report equals a fold in Swift, for several months and two time zones")
    func randomized() throws {
        let f = try ReportFixture()
        let c = f.connection
        let end = ReportFixture.at("2026-11-20T05:00:00Z")
        try c.execute(benchmarkAgenciesSQL, [.int(6)])
        try c.execute(benchmarkCreateTableSQL)
        try c.execute(benchmarkApplicationsTableSQL, [.int64(4000), .int(6), end.postgresValue, .double(1.5), .int64(42)])
        try c.execute(benchmarkApplicationsSQL)
        try c.execute(benchmarkLedgerSQL)
        try c.execute(benchmarkConflictsSQL)
        // Noise: invalid and still-pending copies of some events, which must not count.
        try c.execute("""
            INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq, occurred_at, data, outcome)
            SELECT ledger_id + 1000000000, md5(event_id::text || 'noise')::uuid, application_id, type, origin, agency_code, seq,
                   occurred_at + interval '1 hour', data, CASE WHEN ledger_id % 2 = 0 THEN 'not_applied' ELSE 'pending' END
            FROM cardsync.ledger WHERE ledger_id % 13 = 0
            """)
        // A few conflicts of other kinds, involving one or two agencies.
        try c.execute("""
            INSERT INTO cardsync.conflicts (conflict_id, kind, status, application_ids, agency_codes, event_ids, detail, detected_at, resolved_at, outcome)
            SELECT 1000000 + i, 'invalid_transition', CASE WHEN i % 3 = 0 THEN 'open' ELSE 'resolved' END, '{}',
                   ARRAY['BENCH-0' || (1 + i % 6), 'BENCH-0' || (1 + (i * 7) % 6)], '{}', '{}',
                   $1::timestamptz - i * interval '37 hours',
                   CASE WHEN i % 3 = 0 THEN NULL ELSE $1::timestamptz - i * interval '37 hours' + interval '3 days' END,
                   CASE WHEN i % 3 = 0 THEN NULL ELSE 'dismiss' END
            FROM generate_series(1, 300) i
            """, [end.postgresValue])
        try c.execute("ANALYZE")

        let apps = try Self.apps(c)
        let events = try c.query("SELECT application_id::text AS a, type, occurred_at, agency_code, outcome FROM cardsync.ledger").map {
            Event(app: try $0.decode(String.self, column: "a"), type: try $0.decode(String.self, column: "type"),
                  at: try $0.decode(PostgresTimestamp.self, column: "occurred_at").microsecondsSince1970,
                  agency: try $0.decode(String?.self, column: "agency_code"), outcome: try $0.decode(String.self, column: "outcome"))
        }
        let conflicts = try c.query("SELECT conflict_id, agency_codes, detail->>'held' AS held, kind, detected_at, resolved_at FROM cardsync.conflicts").map {
            Conflict(id: try $0.decode(Int64.self, column: "conflict_id"), codes: try $0.decode([String].self, column: "agency_codes"),
                     held: try $0.decode(String?.self, column: "held"), kind: try $0.decode(String.self, column: "kind"),
                     detected: try $0.decode(PostgresTimestamp.self, column: "detected_at").microsecondsSince1970,
                     resolved: try $0.decode(PostgresTimestamp?.self, column: "resolved_at")?.microsecondsSince1970)
        }
        #expect(apps.count == 4000)
        let agencies = (1...6).map { "BENCH-0\($0)" }
        let months = [(2026, 10), (2026, 11), (2026, 6), (2025, 12), (2025, 7)]
        var checked = 0
        for (zone, offsetHours) in [("Asia/Shanghai", 8), ("UTC", 0)] {
            for (y, m) in months {
                let month = YearMonth(year: y, month: m)!
                let report = try runMonthlyReport(MonthlyReportQuery(month: month, timezone: zone), on: c)
                let start = Int64(Timestamp.daysFromCivil(year: y, month: m, day: 1)) * Self.day - Int64(offsetHours) * 3600 * Self.micro
                let next = month.next
                let stop = Int64(Timestamp.daysFromCivil(year: next.year, month: next.month, day: 1)) * Self.day - Int64(offsetHours) * 3600 * Self.micro
                #expect(report.periodStart.instant.microsecondsSince1970 == start)
                #expect(report.periodEnd.instant.microsecondsSince1970 == stop)
                for code in agencies {
                    let expected = Self.fold(apps: apps, events: events, conflicts: conflicts, start: start, end: stop, agency: code)
                    let actual = report.agencies.first { $0.agencyCode == code }!.figures
                    Self.compare(actual, expected, "\(zone) \(month) \(code)")
                }
                let expectedTotals = Self.fold(apps: apps, events: events, conflicts: conflicts, start: start, end: stop, agency: nil)
                Self.compare(report.totals, expectedTotals, "\(zone) \(month) totals")
                #expect(report.totals.received > 0 || month == YearMonth(year: 2025, month: 7)!)
                checked += 1
            }
        }
        #expect(checked == 10)
    }

    static func apps(_ c: Connection) throws -> [String: App] {
        var out: [String: App] = [:]
        for row in try c.query("SELECT application_id::text AS id, owning_agency, submitted_at, closed_at, status FROM cardsync.applications") {
            out[try row.decode(String.self, column: "id")] = App(
                owner: try row.decode(String.self, column: "owning_agency"),
                submitted: try row.decode(PostgresTimestamp.self, column: "submitted_at").microsecondsSince1970,
                closed: try row.decode(PostgresTimestamp?.self, column: "closed_at")?.microsecondsSince1970,
                status: try row.decode(String.self, column: "status"))
        }
        return out
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let v = values.sorted()
        let position = p * Double(v.count - 1)
        let lo = Int(position.rounded(.down)), hi = Int(position.rounded(.up))
        return v[lo] + (position - Double(lo)) * (v[hi] - v[lo])
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func fold(apps: [String: App], events: [Event], conflicts: [Conflict], start: Int64, end: Int64, agency: String?) -> MonthlyFigures {
        var f = MonthlyFigures()
        let inMonth = { (t: Int64) in t >= start && t < end }
        let mine = { (code: String) in agency == nil || agency == code }
        let held = Set(conflicts.filter { $0.kind == "duplicate_application" }.compactMap(\.held))
        var closed = 0
        for (id, a) in apps where mine(a.owner) {
            if inMonth(a.submitted) {
                f.received += 1
                if held.contains(id) { f.duplicates += 1 }
            }
            if let c = a.closed, inMonth(c) {
                closed += 1
                if a.status == "withdrawn" { f.withdrawn += 1 }
            }
            let openAt = { (t: Int64) in a.submitted <= t && !(a.closed.map { $0 <= t } ?? false) }
            if openAt(start) { f.backlogStart += 1 }
            if openAt(end) {
                f.backlogEnd += 1
                let age = floorDiv(end - a.submitted, day)
                switch age {
                case ...7: f.agingEnd.days0to7 += 1
                case 8...15: f.agingEnd.days8to15 += 1
                case 16...30: f.agingEnd.days16to30 += 1
                default: f.agingEnd.days31plus += 1
                }
                if age > 30 { f.slaBreaches += 1 }
            }
        }
        var leads: [Double] = []
        for e in events where e.outcome == "applied" && inMonth(e.at) {
            guard let a = apps[e.app] else { continue }
            switch e.type {
            case "approved" where mine(a.owner): f.approved += 1
            case "rejected" where mine(a.owner): f.rejected += 1
            case "returned" where mine(a.owner): f.returned += 1
            case "card_produced" where mine(a.owner): f.cardsProduced += 1
            case "card_issued" where mine(e.agency!):
                f.cardsIssued += 1
                let seconds = Double(e.at - a.submitted) / Double(micro)
                leads.append(seconds / 86400)
                if seconds > 30 * 86400 { f.slaBreaches += 1 }
            default: break
            }
        }
        f.netFlow = f.received - closed
        f.leadTimeDays = LeadTime(median: percentile(leads, 0.5), p90: percentile(leads, 0.9))
        for c in conflicts where c.codes.contains(where: mine) {
            if inMonth(c.detected) { f.conflictsOpened += 1 }
            if let r = c.resolved, inMonth(r) { f.conflictsResolved += 1 }
        }
        return f
    }

    static func compare(_ actual: MonthlyFigures, _ expected: MonthlyFigures, _ label: String) {
        #expect(close(actual.leadTimeDays.median, expected.leadTimeDays.median), "\(label) median")
        #expect(close(actual.leadTimeDays.p90, expected.leadTimeDays.p90), "\(label) p90")
        var a = actual, e = expected
        a.leadTimeDays = LeadTime()
        e.leadTimeDays = LeadTime()
        #expect(a == e, "\(label)")
    }
}
