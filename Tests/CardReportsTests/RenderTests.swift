import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

@Suite("Report formats")
struct RenderTests {
    static func reports() throws -> (ReportFixture, MonthlyReport, BacklogReport, ThroughputReport) {
        let f = try ReportFixture()
        try HandMade.load(into: f)
        let monthly = try runMonthlyReport(MonthlyReportQuery(month: YearMonth(year: 2026, month: 10)!), on: f.connection)
        let backlog = try runBacklogReport(BacklogReportQuery(asOf: ReportFixture.at("2026-10-31T16:00:00Z")), on: f.connection)
        let throughput = try runThroughputReport(
            ThroughputReportQuery(from: CivilDate(iso: "2026-09-01")!, to: CivilDate(iso: "2026-10-31")!, interval: .week),
            on: f.connection)
        return (f, monthly, backlog, throughput)
    }

    static func allOutputs(_ m: MonthlyReport, _ b: BacklogReport, _ t: ThroughputReport) -> [(String, String)] {
        var out: [(String, String)] = []
        for format in ReportFormat.allCases {
            for lang in ReportLanguage.allCases {
                out.append(("monthly \(format) \(lang)", render(m, format: format, lang: lang)))
                out.append(("backlog \(format) \(lang)", render(b, format: format, lang: lang)))
                out.append(("throughput \(format) \(lang)", render(t, format: format, lang: lang)))
            }
        }
        return out
    }

    @Test("every report renders in every format and language")
    func everyFormatRenders() throws {
        let (_, m, b, t) = try Self.reports()
        for (name, output) in Self.allOutputs(m, b, t) {
            #expect(!output.isEmpty, "\(name)")
        }
    }

    @Test("no identity number or phone number appears in any report")
    func noPersonalData() throws {
        let (f, m, b, t) = try Self.reports()
        let personal = try f.personalValues()
        #expect(personal.count >= 30)
        for (name, output) in Self.allOutputs(m, b, t) {
            for value in personal {
                #expect(!output.contains(value), "\(name) contains personal data")
            }
            // Nor anything shaped like an 18-character identity number or an 11-digit mobile number.
            #expect(output.range(of: #"[0-9]{17}[0-9Xx]"#, options: .regularExpression) == nil, "\(name)")
            #expect(output.range(of: #"(?<![0-9])1[3-9][0-9]{9}(?![0-9])"#, options: .regularExpression) == nil, "\(name)")
        }
    }

    @Test("monthly JSON has exactly the keys of reports.md, lead times unrounded")
    func monthlyJSONShape() throws {
        let (_, m, _, _) = try Self.reports()
        let text = render(m, format: .json)
        let doc = try JSONParser.parse(text)
        let root = try #require(doc.objectValue)
        #expect(Set(root.keys) == ["report", "month", "timezone", "generated_at", "sla_days", "agencies", "totals"])
        #expect(root["report"] == "monthly")
        #expect(root["month"] == "2026-10")
        #expect(root["timezone"] == "Asia/Shanghai")
        #expect(root["sla_days"]?.intValue == 30)
        let rowKeys: Set<String> = ["agency_code", "agency_name", "received", "duplicates", "approved", "rejected", "returned",
                                    "withdrawn", "cards_produced", "cards_issued", "backlog_start", "backlog_end", "net_flow",
                                    "lead_time_days", "aging_end", "sla_breaches", "conflicts_opened", "conflicts_resolved"]
        let agencies = try #require(root["agencies"]?.arrayValue)
        #expect(agencies.count == 3)
        for a in agencies { #expect(Set(try #require(a.objectValue).keys) == rowKeys) }
        let totals = try #require(root["totals"]?.objectValue)
        #expect(Set(totals.keys) == rowKeys.subtracting(["agency_code", "agency_name"]))
        #expect(Set(try #require(totals["aging_end"]?.objectValue).keys) == ["0-7", "8-15", "16-30", "31+"])
        let lead = try #require(totals["lead_time_days"]?.objectValue)
        if case .double(let p90)? = lead["p90"] { #expect(abs(p90 - 91.4) < 1e-9) } else { Issue.record("p90 not a number") }
        let z = try #require(agencies.first { $0["agency_code"] == "CS-Z" })
        #expect(z["lead_time_days"]?["median"] == .null)
        #expect(z["agency_name"] == .string(HandMade.zName))
        // p90 for A is 111.3: printed with all its digits in JSON, rounded in text.
        #expect(render(m, format: .text).contains("111.30"))
    }

    @Test("csv: UTF-8 byte-order mark, header row, RFC 4180 quoting of a name with a comma and a quote")
    func csv() throws {
        let (_, m, b, t) = try Self.reports()
        for output in [render(m, format: .csv), render(b, format: .csv), render(t, format: .csv)] {
            #expect(Array(output.utf8.prefix(3)) == [0xEF, 0xBB, 0xBF])
            #expect(output.contains("\r\n"))
            #expect(output.contains(#"CS-B,"Bank, ""West"" branch","#))
        }
        let lines = render(m, format: .csv).dropFirst().components(separatedBy: "\r\n")
        #expect(lines[0].hasPrefix("Code,Agency,Received,Duplicates"))
        #expect(lines[1].hasPrefix("CS-A,芙蓉区社保卡服务网点,4,0,3,1,0,1,2,2,4,2,-1,68.50,111.30,0,0,1,1,2,1,2"))
        #expect(lines[4].hasPrefix(",Total,7,1,4,1,1,2,3,4,4,4,0,17.50,91.40,2,0,1,1,2,1,2"))
        #expect(render(m, format: .csv, lang: .zh).dropFirst().hasPrefix("机构代码,经办机构,受理"))
    }

    @Test("text aligns Chinese names by display width")
    func textAlignsByDisplayWidth() throws {
        let (_, m, _, _) = try Self.reports()
        #expect(displayWidth("芙蓉区") == 6)
        #expect(displayWidth("ab") == 2)
        let text = render(m, format: .text, lang: .zh)
        let lines = text.components(separatedBy: "\n")
        let header = try #require(lines.firstIndex { $0.hasPrefix("机构代码") })
        // The table's lines (header, rule, rows, rule, totals) all have the same display width
        // up to the last column, whose right edge is aligned (numbers are right-aligned).
        let table = lines[header...].prefix { !$0.isEmpty }
        #expect(table.count == 7)
        let widths = Set(table.map(displayWidth))
        #expect(widths.count == 1, "\(table.map(displayWidth))")
        // The received column ends at the same display column on every row.
        let rows = table.filter { $0.hasPrefix("CS-") }
        #expect(rows.count == 3)
    }

    @Test("html: one self-contained file with inline SVG, no scripts, no URLs, printable on A4")
    func html() throws {
        let (_, m, b, t) = try Self.reports()
        for lang in ReportLanguage.allCases {
            for output in [render(m, format: .html, lang: lang), render(b, format: .html, lang: lang), render(t, format: .html, lang: lang)] {
                #expect(output.hasPrefix("<!DOCTYPE html>"))
                #expect(output.contains("<svg"))
                #expect(!output.lowercased().contains("<script"))
                #expect(!output.contains("http://") && !output.contains("https://"))
                #expect(!output.contains("src=") && !output.contains("href=") && !output.contains("url("))
                #expect(output.contains("@page") && output.contains("A4"))
                #expect(output.contains("Bank, &quot;West&quot; branch"))
            }
        }
        #expect(render(m, format: .html, lang: .zh).contains("社保卡月度发卡报表"))
    }

    @Test("markdown is a table with a totals row")
    func markdown() throws {
        let (_, m, _, _) = try Self.reports()
        let md = render(m, format: .md)
        #expect(md.hasPrefix("# Monthly card issuance report 2026-10"))
        #expect(md.contains("| Code | Agency | Received |"))
        #expect(md.contains("| **Total** |"))
    }

    @Test("--lang zh labels every heading and status in Chinese")
    func chineseLabels() throws {
        let (_, m, b, t) = try Self.reports()
        let backlog = render(b, format: .text, lang: .zh)
        for label in ["已提交", "退回补正", "审核通过", "已制卡", "已配送", "暂挂", "合计"] { #expect(backlog.contains(label)) }
        #expect(render(m, format: .text, lang: .zh).contains("办理时长中位数"))
        #expect(render(t, format: .md, lang: .zh).contains("期末积压"))
        // No English label left in the Chinese text report headings.
        for english in ["Received", "Backlog", "Total", "Generated", "Agency"] {
            #expect(!render(m, format: .text, lang: .zh).contains(english))
        }
    }
}
