import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

@Suite("Backlog and throughput reports (reports.md)")
struct BacklogAndThroughputTests {
    func backlog(_ f: ReportFixture, _ at: String) throws -> BacklogReport {
        try runBacklogReport(BacklogReportQuery(asOf: ReportFixture.at(at)), on: f.connection)
    }

    func figures(_ r: BacklogReport, _ code: String) -> BacklogFigures { r.agencies.first { $0.agencyCode == code }!.figures }

    @Test("backlog at the end of October: open applications by status and age, oldest age, SLA breaches")
    func backlogAtMonthEnd() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let r = try backlog(f, "2026-10-31T16:00:00Z")
        #expect(r.asOf.rfc3339 == "2026-11-01T00:00:00+08:00")
        let a = figures(r, "CS-A")
        #expect(a.open == 2)
        #expect(a.count(.returned) == 1 && a.count(.approved) == 1 && a.count(.submitted) == 0)
        #expect(a.aging == AgingBuckets(days0to7: 0, days8to15: 0, days16to30: 1, days31plus: 1))
        #expect(a.oldestAgeDays == 91)
        #expect(a.slaBreaches == 1)
        let b = figures(r, "CS-B")
        #expect(b.open == 2 && b.count(.submitted) == 2)   // a5, and a6 submitted at the instant
        #expect(b.aging == AgingBuckets(days0to7: 2))
        #expect(b.oldestAgeDays == 0)
        let z = figures(r, "CS-Z")
        #expect(z.open == 0 && z.oldestAgeDays == nil && z.byStatus.values.allSatisfy { $0 == 0 })
        #expect(r.totals.open == 4)
        #expect(r.totals.count(.submitted) == 2 && r.totals.count(.returned) == 1 && r.totals.count(.approved) == 1)
        #expect(r.totals.aging == AgingBuckets(days0to7: 2, days8to15: 0, days16to30: 1, days31plus: 1))
        #expect(r.totals.oldestAgeDays == 91)
        #expect(r.totals.slaBreaches == 1)
    }

    @Test("backlog at a past instant shows each application's status at that instant, on_hold included")
    func backlogInThePast() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let local = try parseReportInstant("2026-10-06T08:00", timezone: "Asia/Shanghai", on: f.connection)
        #expect(local == ReportFixture.at("2026-10-06T00:00:00Z"))
        let r = try runBacklogReport(BacklogReportQuery(asOf: local), on: f.connection)
        let a = figures(r, "CS-A")
        #expect(a.open == 4)                       // a1, a2 dispatched; a4 returned; a8 submitted
        #expect(a.count(.dispatched) == 2 && a.count(.returned) == 1 && a.count(.submitted) == 1)
        #expect(a.aging == AgingBuckets(days0to7: 3, days31plus: 1))
        #expect(a.oldestAgeDays == 66)
        #expect(a.slaBreaches == 1)
        let b = figures(r, "CS-B")
        #expect(b.open == 2)                       // a7 held as a duplicate; a12 approved at exactly T
        #expect(b.count(.onHold) == 1 && b.count(.approved) == 1)
        #expect(b.oldestAgeDays == 4)
        #expect(r.totals.open == 6 && r.totals.oldestAgeDays == 66)
        // a12 was returned on Oct 3 and amended on Oct 4, which moved it back to submitted.
        #expect(figures(try backlog(f, "2026-10-03T12:00:00Z"), "CS-B").count(.returned) == 1)
        let afterAmendment = figures(try backlog(f, "2026-10-04T12:00:00Z"), "CS-B")
        #expect(afterAmendment.count(.submitted) == 1 && afterAmendment.count(.returned) == 0)
        // Once the conflict kept a8, a7 was withdrawn: no longer open, no longer on hold.
        #expect(figures(try backlog(f, "2026-10-07T00:00:00Z"), "CS-B").count(.onHold) == 0)
    }

    @Test("throughput by month equals the monthly report's figures")
    func throughputByMonth() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try runThroughputReport(ThroughputReportQuery(from: CivilDate(iso: "2026-10-01")!, to: CivilDate(iso: "2026-10-31")!,
                                                              interval: .month), on: f.connection)
        #expect(t.totals.count == 1)
        #expect(t.totals[0].start == CivilDate(iso: "2026-10-01")! && t.totals[0].end == CivilDate(iso: "2026-11-01")!)
        let a = t.agencies.first { $0.agencyCode == "CS-A" }!.figures[0]
        #expect((a.received, a.closed, a.cardsIssued, a.backlogEnd) == (4, 5, 2, 2))
        #expect(close(a.leadTimeMedianDays, 68.5))
        let b = t.agencies.first { $0.agencyCode == "CS-B" }!.figures[0]
        #expect((b.received, b.closed, b.cardsIssued, b.backlogEnd) == (3, 2, 2, 2))
        #expect(close(b.leadTimeMedianDays, 15.5))
        let z = t.agencies.first { $0.agencyCode == "CS-Z" }!.figures[0]
        #expect((z.received, z.closed, z.cardsIssued, z.backlogEnd) == (0, 0, 0, 0) && z.leadTimeMedianDays == nil)
        let total = t.totals[0]
        #expect((total.received, total.closed, total.cardsIssued, total.backlogEnd) == (7, 7, 4, 4))
        #expect(close(total.leadTimeMedianDays, 17.5))
    }

    @Test("weeks start on Monday and each week's backlog_end is the backlog at the week's end")
    func throughputByWeek() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try runThroughputReport(ThroughputReportQuery(from: CivilDate(iso: "2026-09-01")!, to: CivilDate(iso: "2026-11-01")!,
                                                              interval: .week), on: f.connection)
        // Tuesday Sep 1: the first week is clipped to start there (Tuesday to Sunday, partial).
        #expect(t.totals.first?.start == CivilDate(iso: "2026-09-01")!)
        #expect(t.totals.first?.partial == true && t.totals.first?.days == 6)
        #expect(t.totals.last?.end == CivilDate(iso: "2026-11-02")!)      // Sunday Nov 1 ends the last week, whole
        #expect(t.totals.count == 9)
        for (i, week) in t.totals.enumerated() where i > 0 {
            #expect(week.end.dayNumber - week.start.dayNumber == 7 && !week.partial)
            #expect(week.start.dayNumber % 7 == 4)                         // 1970-01-05 was a Monday
        }
        for (i, week) in t.totals.enumerated() {
            let endInstant = try parseReportInstant(week.end.description, timezone: "Asia/Shanghai", on: f.connection)
            let backlog = try runBacklogReport(BacklogReportQuery(asOf: endInstant), on: f.connection)
            #expect(week.backlogEnd == backlog.totals.open, "week \(i)")
            for agency in t.agencies {
                #expect(agency.figures[i].backlogEnd == figures(backlog, agency.agencyCode).open, "week \(i) \(agency.agencyCode)")
            }
        }
        // a2 (Sep 30 23:59:59 local), a1 (Oct 1 00:00 local) and a8 (Sunday Oct 4 08:00 local)
        // are in the week of Monday Sep 28.
        let a = t.agencies.first { $0.agencyCode == "CS-A" }!.figures
        let weekOfSep28 = try #require(a.first { $0.start == CivilDate(iso: "2026-09-28")! })
        #expect(weekOfSep28.received == 3)
        #expect(t.totals.map(\.received).reduce(0, +) == 10)             // a1…a9, a12, a13 minus a10 (June), a4 (Aug)
    }

    @Test("day intervals split at local midnight")
    func throughputByDay() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try runThroughputReport(ThroughputReportQuery(from: CivilDate(iso: "2026-09-30")!, to: CivilDate(iso: "2026-10-01")!,
                                                              interval: .day), on: f.connection)
        let a = t.agencies.first { $0.agencyCode == "CS-A" }!.figures
        #expect(a.map(\.received) == [1, 1])      // a2 on Sep 30, a1 on Oct 1 (local)
        #expect(a.map(\.cardsIssued) == [0, 1])   // a10 at 08:00 local on Oct 1
        #expect(close(a[1].leadTimeMedianDays, 122))
    }
}
