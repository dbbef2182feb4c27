import CardCore
@testable import CardReports
import Foundation
import PostgresClient
import Testing

/// The HTML reports as Chromium lays them out and prints them on A4 landscape: what can be
/// checked without eyes. Run on a city of 13 agencies (`A4City`), every report in both languages.
@Suite("HTML reports on A4, measured in headless Chromium", .serialized,
       .enabled(if: Chromium.available, Comment(rawValue: Chromium.missingMessage)))
struct RenderA4Tests {
    /// Every report, in both languages, as HTML: (name, html).
    static func documents() throws -> (ReportFixture, [(String, String)]) {
        let f = try ReportFixture()
        try A4City.load(into: f)
        let monthly = try runMonthlyReport(MonthlyReportQuery(month: YearMonth(year: 2026, month: 10)!), on: f.connection)
        let backlog = try runBacklogReport(BacklogReportQuery(asOf: ReportFixture.at("2026-10-31T16:00:00Z")), on: f.connection)
        // Wednesday Aug 5 to Thursday Oct 29: partial first and last weeks.
        let throughput = try runThroughputReport(
            ThroughputReportQuery(from: CivilDate(iso: "2026-08-05")!, to: CivilDate(iso: "2026-10-29")!, interval: .week),
            on: f.connection)
        var out: [(String, String)] = []
        for lang in ReportLanguage.allCases {
            out.append(("monthly-\(lang)", render(monthly, format: .html, lang: lang)))
            out.append(("backlog-\(lang)", render(backlog, format: .html, lang: lang)))
            out.append(("throughput-\(lang)", render(throughput, format: .html, lang: lang)))
        }
        return (f, out)
    }

    /// A fresh directory for the HTML, probes and PDFs; under `CARDSYNC_A4_OUTPUT` when that is
    /// set, so that a person can look at what was measured (pdftoppm the PDFs).
    static func workDirectory() throws -> URL {
        let base = ProcessInfo.processInfo.environment["CARDSYNC_A4_OUTPUT"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("cardsync-a4-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes `dir` unless the files were asked for (`CARDSYNC_A4_OUTPUT`).
    static func cleanUp(_ dir: URL) {
        guard ProcessInfo.processInfo.environment["CARDSYNC_A4_OUTPUT"] == nil else { return }
        try? FileManager.default.removeItem(at: dir)
    }

    @Test("no element reaches past the page, no heading breaks inside a word, no chart label is cut")
    func geometry() throws {
        let (_, documents) = try Self.documents()
        let dir = try Self.workDirectory()
        defer { Self.cleanUp(dir) }
        for (name, html) in documents {
            let g = try GeometryProbe.measure(html, in: dir, name: name)
            // A4 landscape less the 10 mm margins: 277 mm, 1047 CSS pixels.
            #expect(abs(g.pageWidth - 277 / 25.4 * 96) < 2, "\(name): laid out \(g.pageWidth) px wide")
            #expect(g.overflow.isEmpty, "\(name): \(g.overflow.count) element(s) past the page edge: \(g.overflow.prefix(5))")
            #expect(!g.headings.isEmpty, "\(name): no table heading measured")
            for heading in g.headings {
                #expect(GeometryProbe.brokenWords(heading).isEmpty, "\(name): heading \(heading.text) laid out as \(heading.lines)")
            }
            #expect(!g.svgText.isEmpty, "\(name): no chart text measured")
            for label in g.svgText {
                #expect(!label.clipped, "\(name): chart text \"\(label.text)\" is cut at the chart's edge (\(label.box))")
                #expect(!label.text.contains("…"), "\(name): chart text \"\(label.text)\" is shortened")
            }
            // Every agency's name is printed whole under its bar.
            if !name.hasPrefix("throughput") {
                let texts = Set(g.svgText.map(\.text))
                for (_, agency) in A4City.agencies { #expect(texts.contains(agency), "\(name): no chart label \(agency)") }
            }
            // A totals row has a heavy rule above it; a run of them (or any elsewhere) does not.
            #expect(g.heavyRules.allSatisfy { $0 <= 1 }, "\(name): heavy-ruled rows per table: \(g.heavyRules)")
        }
    }

    @Test("on a page too narrow for them, headings break between words only (受理 never as 受/理)")
    func headingsBreakBetweenWords() throws {
        let (_, documents) = try Self.documents()
        let dir = try Self.workDirectory()
        defer { Self.cleanUp(dir) }
        for (name, html) in documents where name.hasPrefix("monthly") || name.hasPrefix("backlog") {
            // Half the width: every multi-word heading has to break somewhere.
            let g = try GeometryProbe.measure(html, in: dir, name: name + "-narrow", extraCSS: "body { max-width: 140mm; }")
            var multiLine = 0
            for heading in g.headings {
                if heading.lines.count > 1 { multiLine += 1 }
                #expect(GeometryProbe.brokenWords(heading).isEmpty, "\(name): heading \(heading.text) laid out as \(heading.lines)")
            }
            #expect(multiLine >= 5, "\(name): only \(multiLine) headings wrapped at 140 mm, the check proves nothing")
        }
    }

    @Test("printed: page numbers on every page, the monthly table whole on page 1, headings with their charts")
    func printed() throws {
        let (_, documents) = try Self.documents()
        let dir = try Self.workDirectory()
        defer { Self.cleanUp(dir) }
        for (name, html) in documents {
            let file = dir.appendingPathComponent(name + ".html")
            try html.write(to: file, atomically: true, encoding: .utf8)
            let pdf = dir.appendingPathComponent(name + ".pdf")
            try Chromium.printToPDF(file, pdf, profile: dir.appendingPathComponent("profile-" + name).path)
            let count = try Chromium.pageCount(pdf)
            let pages = try Chromium.pageTexts(pdf)
            #expect(pages.count == count, "\(name): pdftotext read \(pages.count) pages, pdfinfo \(count)")
            let zh = name.hasSuffix("zh")
            for (i, page) in pages.enumerated() {
                let number = zh ? "第 \(i + 1) 页，共 \(count) 页" : "Page \(i + 1) of \(count)"
                #expect(page.contains(number), "\(name): page \(i + 1) has no \"\(number)\"")
            }
            // The sign-off block ends the report.
            for label in zh ? ["制表人", "审核人", "日期"] : ["Prepared by", "Reviewed by", "Date"] {
                #expect(pages.last?.contains(label) == true, "\(name): the last page has no \(label)")
            }
            if name.hasPrefix("monthly") || name.hasPrefix("backlog") {
                // The table on the first page, whole: every agency and the totals; the charts
                // (with the sign-off) fill the second, and nothing spills onto a third.
                #expect(count == 2, "\(name): \(count) pages")
                let first = pages.first ?? ""
                for (code, _) in A4City.agencies { #expect(first.contains(code), "\(name): \(code) is not on page 1") }
                #expect(first.contains(zh ? "合计" : "Total"), "\(name): the totals row is not on page 1")
                #expect(pages.dropFirst().allSatisfy { !$0.contains("CS-CSX-001") }, "\(name): table rows after page 1")
            }
            if name.hasPrefix("throughput") {
                // Each agency's heading, "name (CODE)", is on the page of its two charts, whole: on
                // every page as many headings as chart captions, and twice as many first dates
                // under an axis (the bottom of each chart; the first week is partial).
                let cumulative = zh ? "累计流量图" : "Cumulative flow"
                let perInterval = zh ? "各周期办理量" : "Throughput per interval"
                let allAgencies = zh ? "全部机构" : "All agencies"
                var sections = 0
                for (i, page) in pages.enumerated() {
                    let headings = A4City.agencies.filter { page.contains("(" + $0.0 + ")") }.count
                        + page.components(separatedBy: "\n").filter { $0.trimmingCharacters(in: .whitespaces) == allAgencies }.count
                    let captions = page.components(separatedBy: cumulative).count - 1
                    #expect(headings == captions, "\(name): page \(i + 1) has \(headings) agency headings and \(captions) charts")
                    #expect(page.components(separatedBy: perInterval).count - 1 == captions, "\(name): page \(i + 1)")
                    #expect(page.components(separatedBy: "08-05*").count - 1 == 2 * captions,
                            "\(name): page \(i + 1) has \(captions) chart sections but the bottom of \(page.components(separatedBy: "08-05*").count - 1) charts")
                    sections += captions
                }
                #expect(sections == A4City.agencies.count + 1, "\(name): \(sections) chart sections")
                // The per-interval totals are one table of their own, on page 1.
                #expect(pages.first?.contains(zh ? "全部机构分周期合计" : "All agencies, by interval") == true)
            }
        }
    }
}
