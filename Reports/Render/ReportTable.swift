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
    /// Leading columns that identify a row (code, name): repeated in every table when the text
    /// form is split to fit a terminal.
    var keyColumns = 2
    /// The key column that may be cut to fit (the agency name, free text from a queue).
    var truncatableKey: Int? = 1
    /// Non-key columns that belong together, in order; the text form splits between them first.
    /// Empty: split anywhere.
    var sections: [[Int]] = []
    /// A warning printed before the table (a month not over yet): nil when there is none.
    var notice: String? = nil
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
    /// The text form. With `maxWidth`, a table wider than that is printed as several tables, each
    /// repeating the key columns (code, name) and the totals row, with the columns of a section
    /// kept together; an agency name too long even for that is cut with an ellipsis, and the
    /// footnote is wrapped. Without it (`--wide`), one table however wide, as the Markdown and
    /// CSV forms have it.
    func renderText(maxWidth: Int? = nil) -> String {
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
        if let notice {
            let text = TerminalText.escapingControls(notice)
            out += "\n" + (maxWidth.map { TerminalLayout.wrapped(text, width: $0).joined(separator: "\n") } ?? text) + "\n"
        }
        out += "\n"
        let columnCount = headers.count
        let numeric = (0..<columnCount).map { c in rows.contains { $0.cells[c].isNumeric } }
        var cells = rows.map { $0.cells.map { TerminalText.escapingControls($0.display) } }
        var widths = headers.map(displayWidth)
        for row in cells {
            for (c, cell) in row.enumerated() { widths[c] = max(widths[c], displayWidth(cell)) }
        }
        var tables = [Array(0..<columnCount)]
        let fullWidth = widths.reduce(0, +) + 2 * (columnCount - 1)
        if let maxWidth, fullWidth > maxWidth, keyColumns < columnCount {
            let others = Array(keyColumns..<columnCount)
            // The widest figure column must fit beside the key columns; when a long agency name
            // leaves no room for it, the name (never the code or a figure) is cut.
            let widestOther = others.map { widths[$0] }.max() ?? 0
            let keyWidth = widths.prefix(keyColumns).reduce(0, +) + 2 * (keyColumns - 1)
            if let name = truncatableKey, keyWidth + 2 + widestOther > maxWidth {
                let room = max(displayWidth(headers[name]), widths[name] - (keyWidth + 2 + widestOther - maxWidth))
                for r in cells.indices { cells[r][name] = TerminalLayout.truncated(cells[r][name], toWidth: room) }
                widths[name] = cells.map { displayWidth($0[name]) }.max().map { max($0, displayWidth(headers[name])) } ?? room
            }
            let sections = self.sections.isEmpty ? [others] : self.sections
            tables = TerminalLayout.columnGroups(widths: widths, keys: keyColumns, sections: sections, maxWidth: maxWidth)
                .map { Array(0..<keyColumns) + $0 }
        }
        func line(_ row: [String], _ columns: [Int]) -> String {
            var joined = columns.map { padded(row[$0], to: widths[$0], right: numeric[$0]) }.joined(separator: "  ")
            while joined.hasSuffix(" ") { joined.removeLast() }
            return joined + "\n"
        }
        out += tables.map { columns -> String in
            var table = ""
            let rule = columns.map { String(repeating: "-", count: widths[$0]) }.joined(separator: "  ") + "\n"
            table += line(headers, columns)
            table += rule
            var ruledBeforeTotals = !rows.contains { !$0.isTotal }   // no agency rows: one rule is enough
            for (r, row) in rows.enumerated() {
                if row.isTotal && !ruledBeforeTotals {
                    table += rule
                    ruledBeforeTotals = true
                }
                table += line(cells[r], columns)
            }
            return table
        }.joined(separator: "\n")
        let footnote = TerminalText.escapingControls(footnote, keepingNewlines: true)
        if let maxWidth {
            let wrapped = footnote.split(separator: "\n", omittingEmptySubsequences: false)
                .flatMap { TerminalLayout.wrapped(String($0), width: maxWidth) }
            out += "\n" + wrapped.joined(separator: "\n") + "\n"
        } else {
            out += "\n" + footnote + "\n"
        }
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
        if let notice { out += "\n> " + escape(notice) + "\n" }
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
