import CardCore
@testable import CardReports
import Foundation
import Testing

/// The text form fitted to a width: split into tables between sections, names cut only when
/// they leave no room, never a wide character cut in two; `textWidth: nil` is the one table.
@Suite("Text width")
struct TextWidthTests {
    static func lines(_ s: String) -> [String] { s.components(separatedBy: "\n") }

    @Test("truncation and wrapping count display columns and never split a character")
    func truncateAndWrap() {
        #expect(TerminalLayout.truncated("芙蓉区社保卡服务网点", toWidth: 20) == "芙蓉区社保卡服务网点")
        // 7 columns: three wide characters (6) would leave no room for the ellipsis.
        #expect(TerminalLayout.truncated("芙蓉区社保卡服务网点", toWidth: 7) == "芙蓉区…")
        #expect(TerminalLayout.truncated("芙蓉区社保卡服务网点", toWidth: 6) == "芙蓉…")
        #expect(TerminalLayout.truncated("kept 609de2af, held 5d4ffe4e", toWidth: 10) == "kept 609d…")
        // A combining accent (no column of its own) stays with its letter.
        let accented = TerminalLayout.truncated("e\u{301}e\u{301}e\u{301}", toWidth: 2)
        #expect(Array(accented.unicodeScalars) == ["e", "\u{301}", "…"])
        let wrapped = TerminalLayout.wrapped("口径依照本局报表规范：受理数为本月在该机构提交的申请", width: 9)
        #expect(wrapped.allSatisfy { TerminalText.displayWidth($0) <= 9 })
        #expect(wrapped.joined() == "口径依照本局报表规范：受理数为本月在该机构提交的申请")
        #expect(TerminalLayout.wrapped("apply staged batches: ledger", width: 21) == ["apply staged batches:", "ledger"])
    }

    @Test("every report fits the width in both languages, the wide form is the single table")
    func reportsFit() throws {
        let (_, m, b, t) = try RenderTests.reports()
        for lang in ReportLanguage.allCases {
            for (name, fitted, wide) in [
                ("monthly", render(m, format: .text, lang: lang, textWidth: 70), render(m, format: .text, lang: lang, textWidth: nil)),
                ("backlog", render(b, format: .text, lang: lang, textWidth: 70), render(b, format: .text, lang: lang, textWidth: nil)),
                ("throughput", render(t, format: .text, lang: lang, textWidth: 70), render(t, format: .text, lang: lang, textWidth: nil)),
            ] {
                let over = Self.lines(fitted).filter { TerminalText.displayWidth($0) > 70 }
                #expect(over.isEmpty, "\(name) \(lang): \(over)")
                let code = lang == .en ? "Code " : "机构代码 "
                #expect(Self.lines(fitted).filter { $0.hasPrefix(code) }.count >= 2, "\(name) \(lang)\n\(fitted)")
                #expect(Self.lines(wide).filter { $0.hasPrefix(code) }.count == 1, "\(name) \(lang)")
                // Every table has the totals row.
                let totals = lang == .en ? "Total" : "合计"
                #expect(fitted.components(separatedBy: totals).count - 1 >= Self.lines(fitted).filter { $0.hasPrefix(code) }.count)
            }
        }
        // Wide enough: the single table, the same as --wide, and the footnote on one line.
        #expect(render(b, format: .text, textWidth: 1000) == render(b, format: .text, textWidth: nil))
        // The monthly sections: Received with Duplicates, never a section cut in two at 100.
        let monthly = render(m, format: .text, textWidth: 100)
        let headers = Self.lines(monthly).filter { $0.hasPrefix("Code ") }
        #expect(headers.contains { $0.contains("Received") && $0.contains("Duplicates") })
        #expect(headers.contains { $0.contains("Lead time median (days)") && $0.contains("Lead time P90 (days)") })
        #expect(headers.contains { $0.contains("0-7 d") && $0.contains("31+ d") && $0.contains("SLA breaches") })
    }

    @Test("an agency name too long for any table is cut with an ellipsis, the code and figures kept")
    func longNameIsCut() throws {
        let (_, m, _, _) = try RenderTests.reports()
        var report = m
        let long = String(repeating: "长沙市芙蓉区社保卡服务网点", count: 4)   // 104 columns
        report.agencies[0].agencyName = long
        let text = render(report, format: .text, lang: .zh, textWidth: 80)
        let over = Self.lines(text).filter { TerminalText.displayWidth($0) > 80 }
        #expect(over.isEmpty, "\(over)")
        let row = try #require(Self.lines(text).first { $0.hasPrefix("CS-A ") })
        #expect(row.contains("…") && !row.contains(long))
        #expect(render(report, format: .text, lang: .zh, textWidth: nil).contains(long))
        #expect(render(report, format: .csv, lang: .zh).contains(long))
    }
}
