import CardCore
import Foundation

/// A report flattened for the text-like formats: a title, a few lines of context, and a table
/// whose last rows may be totals.
struct ReportTable {
    enum Cell {
        case text(String)
        case int(Int)
        /// Days, printed with two decimals; nil prints as a dash.
        case days(Double?)

        /// How the cell reads in a text-like format.
        var display: String {
            switch self {
            case .text(let s): return s
            case .int(let n): return String(n)
            case .days(let d): return d.map(formatDays) ?? "-"
            }
        }

        var isNumeric: Bool {
            if case .text = self { return false }
            return true
        }
    }

    struct Row {
        var cells: [Cell]
        var isTotal = false
    }

    var title: String
    /// (label, value) lines printed under the title.
    var context: [(String, String)]
    var headers: [String]
    var rows: [Row]
    var footnote: String
}

/// Days rounded to two decimals, as printed in text, Markdown, CSV and HTML.
func formatDays(_ days: Double) -> String {
    String(format: "%.2f", (days * 100).rounded() / 100)
}

// MARK: - Display width

/// Terminal columns a string occupies (CardCore's rule: wide CJK characters take two).
func displayWidth(_ s: String) -> Int { TerminalText.displayWidth(s) }

func padded(_ s: String, to width: Int, right: Bool) -> String {
    let fill = String(repeating: " ", count: max(0, width - displayWidth(s)))
    return right ? fill + s : s + fill
}

// MARK: - text

extension ReportTable {
    func renderText() -> String {
        // Agency names and districts come from agencies' queue files: shown, never acted on.
        let title = TerminalText.escapingControls(title)
        let context = context.map { (TerminalText.escapingControls($0.0), TerminalText.escapingControls($0.1)) }
        let headers = headers.map { TerminalText.escapingControls($0) }
        var out = title + "\n"
        out += String(repeating: "=", count: displayWidth(title)) + "\n"
        let labelWidth = context.map { displayWidth($0.0) }.max() ?? 0
        for (label, value) in context {
            out += padded(label + ":", to: labelWidth + 1, right: false) + " " + value + "\n"
        }
        out += "\n"
        let columnCount = headers.count
        let numeric = (0..<columnCount).map { c in rows.contains { $0.cells[c].isNumeric } }
        var widths = headers.map(displayWidth)
        for row in rows {
            for (c, cell) in row.cells.enumerated() { widths[c] = max(widths[c], displayWidth(TerminalText.escapingControls(cell.display))) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (c, text) in cells.enumerated() { parts.append(padded(text, to: widths[c], right: numeric[c])) }
            var joined = parts.joined(separator: "  ")
            while joined.hasSuffix(" ") { joined.removeLast() }
            return joined + "\n"
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        out += line(headers)
        out += rule
        var ruledBeforeTotals = !rows.contains { !$0.isTotal }   // no agency rows: one rule is enough
        for row in rows {
            if row.isTotal && !ruledBeforeTotals {
                out += rule
                ruledBeforeTotals = true
            }
            out += line(row.cells.map { TerminalText.escapingControls($0.display) })
        }
        out += "\n" + TerminalText.escapingControls(footnote, keepingNewlines: true) + "\n"
        return out
    }
}

// MARK: - Markdown

extension ReportTable {
    func renderMarkdown() -> String {
        func escape(_ s: String) -> String {
            var out = ""
            for ch in TerminalText.escapingControls(s, keepingNewlines: true) {
                switch ch {
                case "|": out += "\\|"
                case "\\", "*", "_", "`", "[", "]", "<", ">": out += "\\" + String(ch)
                case "\n", "\r": out += " "
                default: out.append(ch)
                }
            }
            return out
        }
        var out = "# " + escape(title) + "\n\n"
        for (label, value) in context { out += "- **" + escape(label) + "**: " + escape(value) + "\n" }
        out += "\n"
        let numeric = (0..<headers.count).map { c in rows.contains { $0.cells[c].isNumeric } }
        out += "| " + headers.map(escape).joined(separator: " | ") + " |\n"
        out += "|" + numeric.map { $0 ? " ---: |" : " --- |" }.joined() + "\n"
        for row in rows {
            let cells = row.cells.map { cell -> String in
                let text = escape(cell.display)
                return row.isTotal && !text.isEmpty ? "**" + text + "**" : text
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        out += "\n" + escape(footnote) + "\n"
        return out
    }
}

// MARK: - CSV

extension ReportTable {
    /// The table through the shared `CSVWriter`: RFC 4180, CRLF, a header row, UTF-8 with a
    /// byte-order mark, and no cell a spreadsheet would run as a formula.
    func renderCSV() -> String {
        var csv = CSVWriter(header: headers)
        for row in rows {
            csv.append(row.cells.map { cell -> String in
                if case .days(nil) = cell { return "" }
                return cell.display
            })
        }
        return csv.text
    }
}
