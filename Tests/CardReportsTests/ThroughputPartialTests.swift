import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

/// Throughput intervals are clipped to the requested period and the clipped ones are marked
/// partial, on the hand-made dataset (`HandMade`, see MonthlyReportTests for its applications).
@Suite("Throughput: intervals clipped to --from and --to, partial ones marked")
struct ThroughputPartialTests {
    func throughput(_ f: ReportFixture, _ from: String, _ to: String, _ interval: ThroughputInterval) throws -> ThroughputReport {
        try runThroughputReport(ThroughputReportQuery(from: CivilDate(iso: from)!, to: CivilDate(iso: to)!, interval: interval),
                                on: f.connection)
    }

    @Test("a weekly report from Friday to Monday counts only those days: two partial weeks, nothing from before --from")
    func weeksClippedToThePeriod() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try throughput(f, "2026-10-02", "2026-10-05", .week)
        #expect(t.totals.map(\.start) == [CivilDate(iso: "2026-10-02")!, CivilDate(iso: "2026-10-05")!])
        #expect(t.totals.map(\.end) == [CivilDate(iso: "2026-10-05")!, CivilDate(iso: "2026-10-06")!])
        #expect(t.totals.map(\.days) == [3, 1])
        #expect(t.totals.map(\.partial) == [true, true])
        // Friday Oct 2 to Sunday Oct 4 (local): a12 (B, Oct 2 08:00) and a8 (A, Oct 4 08:00). The
        // whole week of Sep 28 would also count a2 (Sep 30) and a1 (Oct 1), and the card a10 was
        // issued on Oct 1 08:00.
        #expect(t.totals.map(\.received) == [2, 1])                // Monday Oct 5: a7 (B, 08:00)
        #expect(t.totals.map(\.cardsIssued) == [0, 0])
        #expect(t.totals.map(\.closed) == [0, 0])
        let a = try #require(t.agencies.first { $0.agencyCode == "CS-A" }).figures
        let b = try #require(t.agencies.first { $0.agencyCode == "CS-B" }).figures
        #expect(a.map(\.received) == [1, 0] && b.map(\.received) == [1, 1])
        #expect(a.allSatisfy(\.partial) && b.allSatisfy(\.partial))
        // The backlog at each clipped interval's end is still the backlog at that instant.
        for (i, interval) in t.totals.enumerated() {
            let end = try parseReportInstant(interval.end.description, timezone: "Asia/Shanghai", on: f.connection)
            let backlog = try runBacklogReport(BacklogReportQuery(asOf: end), on: f.connection)
            #expect(interval.backlogEnd == backlog.totals.open, "interval \(i)")
        }
    }

    @Test("every figure of a clipped interval agrees with a count over exactly its local days")
    func clippedFiguresMatchAnIndependentCount() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try throughput(f, "2026-09-30", "2026-10-21", .week)
        #expect(t.totals.first?.partial == true && t.totals.last?.partial == true)
        #expect(t.totals.dropFirst().dropLast().allSatisfy { !$0.partial && $0.days == 7 })
        for interval in t.totals {
            let rows = try f.connection.query("""
                SELECT (SELECT count(*) FROM cardsync.applications
                        WHERE submitted_at >= $1::date::timestamp AT TIME ZONE 'Asia/Shanghai'
                          AND submitted_at < $2::date::timestamp AT TIME ZONE 'Asia/Shanghai') AS received,
                       (SELECT count(*) FROM cardsync.applications
                        WHERE closed_at >= $1::date::timestamp AT TIME ZONE 'Asia/Shanghai'
                          AND closed_at < $2::date::timestamp AT TIME ZONE 'Asia/Shanghai') AS closed
                """, [.text(interval.start.description), .text(interval.end.description)])
            #expect(interval.received == (try rows[0].decode(Int.self, column: "received")), "\(interval.start)")
            #expect(interval.closed == (try rows[0].decode(Int.self, column: "closed")), "\(interval.start)")
        }
        // Sep 30 (Wednesday) to Oct 21 (Wednesday): the whole period's receipts, no more.
        // a2 (Sep 30 23:59:59), a1, a12, a8, a7, a3 and a9 (Oct 20): not a5 (Oct 31).
        #expect(t.totals.map(\.received).reduce(0, +) == 7)
    }

    @Test("a month clipped to its second half is partial; a week asked for whole is not")
    func monthsAndWholeIntervals() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let m = try throughput(f, "2026-10-15", "2026-10-31", .month)
        #expect(m.totals.count == 1)
        #expect(m.totals[0].start == CivilDate(iso: "2026-10-15")! && m.totals[0].end == CivilDate(iso: "2026-11-01")!)
        #expect(m.totals[0].partial && m.totals[0].days == 17)
        #expect(m.totals[0].received == 3)                         // a3 (Oct 15), a9 (Oct 20), a5 (Oct 31 23:59:59)
        let w = try throughput(f, "2026-09-28", "2026-10-04", .week)
        #expect(w.totals.count == 1 && !w.totals[0].partial && w.totals[0].days == 7)
        #expect(w.totals[0].received == 4)                         // a2, a1, a12, a8
        let d = try throughput(f, "2026-09-30", "2026-10-02", .day)
        #expect(d.totals.allSatisfy { !$0.partial && $0.days == 1 })
    }

    @Test("partial intervals are marked in JSON (\"partial\": true), CSV, text, Markdown and HTML")
    func markedInEveryFormat() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let t = try throughput(f, "2026-09-30", "2026-10-21", .week)
        let doc = try JSONParser.parse(render(t, format: .json))
        let totals = try #require(doc["totals"]?["intervals"]?.arrayValue)
        #expect(totals.map { $0["partial"] } == [.bool(true), .bool(false), .bool(false), .bool(true)])
        for agency in try #require(doc["agencies"]?.arrayValue) {
            let intervals = try #require(agency["intervals"]?.arrayValue)
            #expect(intervals.first?["partial"] == .bool(true) && intervals.last?["partial"] == .bool(true))
            // The contracted keys are all still there.
            for key in ["start", "end", "received", "closed", "cards_issued", "backlog_end", "lead_time_median_days"] {
                #expect(intervals.allSatisfy { $0.objectValue?[key] != nil }, "\(key)")
            }
        }
        #expect(totals.first?["start"] == "2026-09-30" && totals.last?["end"] == "2026-10-22")

        let csv = render(t, format: .csv).dropFirst().components(separatedBy: "\r\n")
        #expect(csv[0].hasPrefix("Code,Agency,From,To,Partial,Received"))
        #expect(csv.contains { $0.hasPrefix("CS-A,芙蓉区社保卡服务网点,2026-09-30,2026-10-04,yes,") })
        #expect(csv.contains { $0.hasPrefix("CS-A,芙蓉区社保卡服务网点,2026-10-05,2026-10-11,,") })
        #expect(csv.contains { $0.hasPrefix("CS-A,芙蓉区社保卡服务网点,2026-10-19,2026-10-21,yes,") })
        #expect(render(t, format: .csv, lang: .zh).contains("机构代码,经办机构,起,止,部分周期,受理"))

        for lang in ReportLanguage.allCases {
            let l = Labels(lang: lang)
            // The footnote's start: text wraps it and Markdown escapes its `*`.
            let note = String(l["footnote.partial"].prefix(lang == .zh ? 12 : 25))
            for format in [ReportFormat.text, .md, .html] {
                #expect(render(t, format: format, lang: lang).contains(note), "\(format) \(lang)")
            }
            #expect(render(t, format: .text, lang: lang).contains("  " + l["partial.yes"] + "  "))
            let html = render(t, format: .html, lang: lang)
            // The first and last dates under each chart carry the mark, the others do not.
            #expect(html.contains(">09-30*</text>") && html.contains(">10-19*</text>") && !html.contains(">10-05*</text>"))
            #expect(html.contains("stroke-dasharray"))
        }
        // A period of whole weeks has no partial interval and no footnote about them.
        let whole = try throughput(f, "2026-09-28", "2026-10-11", .week)
        #expect(!render(whole, format: .text).contains(String(Labels(lang: .en)["footnote.partial"].prefix(25))))
        #expect(!render(whole, format: .html).contains("stroke-dasharray"))
    }
}

/// A report of a month or period not over, or not begun, says so before its figures.
@Suite("Notices: a month not over, a period not begun")
struct ReportNoticeTests {
    /// The current local date in Asia/Shanghai, as the database sees it.
    static func today(_ f: ReportFixture) throws -> CivilDate {
        let rows = try f.connection.query("SELECT ((now() AT TIME ZONE 'Asia/Shanghai')::date)::text AS d")
        return CivilDate(iso: try rows[0].decode(String.self, column: "d"))!
    }

    @Test("a month not over is provisional, a month not begun says every figure is zero, a past month says nothing")
    func monthlyNotices() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let l = Labels(lang: .en), zh = Labels(lang: .zh)
        let current = try runMonthlyReport(MonthlyReportQuery(month: YearMonth(try Self.today(f))), on: f.connection)
        let future = try runMonthlyReport(MonthlyReportQuery(month: YearMonth(year: 2099, month: 1)!), on: f.connection)
        let past = try runMonthlyReport(MonthlyReportQuery(month: YearMonth(year: 2026, month: 10)!), on: f.connection)
        let provisional = l["notice.month_incomplete"].components(separatedBy: "%@")[0]
        let notBegun = l["notice.month_future"].components(separatedBy: "(")[0]
        for format in [ReportFormat.text, .md, .html] {
            #expect(render(current, format: format).contains(provisional), "\(format)")
            #expect(render(current, format: format, lang: .zh).contains(zh["notice.month_incomplete"].components(separatedBy: "%@")[0]))
            #expect(render(future, format: format).contains(notBegun), "\(format)")
            #expect(!render(future, format: format).contains(provisional))
            #expect(!render(past, format: format).contains(provisional) && !render(past, format: format).contains(notBegun))
        }
        #expect(render(current, format: .html).contains("class=\"notice\""))
        #expect(!render(past, format: .html).contains("class=\"notice\""))
        // The contracted JSON keeps its keys: generated_at and month already tell.
        let root = try #require(try JSONParser.parse(render(current, format: .json)).objectValue)
        #expect(Set(root.keys) == ["report", "month", "timezone", "generated_at", "sla_days", "agencies", "totals"])
    }

    @Test("a throughput period that includes today is provisional; a backlog as of a future instant says so")
    func throughputAndBacklogNotices() throws {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let today = try Self.today(f)
        let l = Labels(lang: .en)
        let open = try runThroughputReport(
            ThroughputReportQuery(from: CivilDate(dayNumber: today.dayNumber - 10), to: today, interval: .week), on: f.connection)
        #expect(render(open, format: .text).contains(l["notice.period_incomplete"].components(separatedBy: "%@")[0]))
        let closed = try runThroughputReport(
            ThroughputReportQuery(from: CivilDate(iso: "2026-09-01")!, to: CivilDate(iso: "2026-09-30")!, interval: .week), on: f.connection)
        #expect(!render(closed, format: .html).contains("class=\"notice\""))
        let later = try runBacklogReport(BacklogReportQuery(asOf: ReportFixture.at("2099-01-01T00:00:00Z")), on: f.connection)
        #expect(render(later, format: .md).contains(l["notice.asof_future"].components(separatedBy: "(")[0]))
    }
}
