import CardCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain aligned table for terminal output; wide (CJK) characters count two columns.
///
/// With `maxWidth` a table wider than that is fitted, in this order, until it fits: list cells
/// (`stacked`) are put one item per line; the free-text column (`freeText`) takes the room left
/// (cut with `…` or wrapped) or, with too little room, goes on a line of its own under each row;
/// and the remaining columns are split into several tables that each repeat the first
/// `keyColumns`. Without it (`--wide`), one line per row however wide.
struct TextTable {
    var headers: [String]
    var rows: [[String]]
    /// Columns aligned right (numbers).
    var rightAligned: Set<Int> = []
    /// The display columns the table may take; nil: no limit.
    var maxWidth: Int? = nil
    /// Leading columns that name a row, repeated in each table when the columns are split.
    var keyColumns = 1
    /// Columns whose cells are lists joined by ", ", stacked one item per line to fit.
    var stacked: Set<Int> = []
    /// The column of long free text (a summary, a purpose) and how it is fitted.
    var freeText: (column: Int, fit: FreeTextFit)? = nil

    enum FreeTextFit {
        /// Cut to one line ending with `…`: a list stays one line per entry; the whole text is a
        /// `show` or `--wide` away.
        case truncate
        /// Wrapped over as many lines as it needs: nothing is lost.
        case wrap
    }

    /// Narrower than this the free-text column is unreadable in place: it goes under the row.
    static let freeTextMinimum = 24

    func render() -> String {
        // Cells can hold names and notes from agencies' queues: never let them drive the terminal.
        let headers = headers.map { TerminalText.escapingControls($0) }
        var cells: [[[String]]] = rows.map { $0.map { [TerminalText.escapingControls($0)] } }
        var below: [String]? = nil   // the free text of each row, printed under it
        var columns = Array(headers.indices)

        func widths() -> [Int] {
            var widths = headers.map(Self.displayWidth)
            for row in cells {
                for (i, cell) in row.enumerated() where i < widths.count {
                    widths[i] = max(widths[i], cell.map(Self.displayWidth).max() ?? 0)
                }
            }
            return widths
        }
        func total(_ w: [Int], _ cols: [Int]) -> Int { cols.reduce(0) { $0 + w[$1] } + 2 * max(0, cols.count - 1) }

        var groups = [columns]
        if let maxWidth, total(widths(), columns) > maxWidth {
            for r in cells.indices {
                for c in stacked where c < cells[r].count {
                    let items = cells[r][c][0].components(separatedBy: ", ")
                    cells[r][c] = items.enumerated().map { $0.offset < items.count - 1 ? $0.element + "," : $0.element }
                }
            }
            if let (column, fit) = freeText, total(widths(), columns) > maxWidth {
                let w = widths()
                let room = maxWidth - total(w, columns.filter { $0 != column }) - 2
                if room >= max(Self.freeTextMinimum, Self.displayWidth(headers[column])) {
                    for r in cells.indices where column < cells[r].count {
                        let text = cells[r][column][0]
                        cells[r][column] = fit == .truncate ? [TerminalLayout.truncated(text, toWidth: room)]
                                                            : TerminalLayout.wrapped(text, width: room)
                    }
                } else {
                    // Under its row, indented past the key columns, so the rows stay scannable.
                    columns.removeAll { $0 == column }
                    let indent = total(w, Array(columns.prefix(keyColumns))) + 2
                    below = cells.map { row in
                        let text = column < row.count ? row[column][0] : ""
                        let room = maxWidth - indent
                        let lines = fit == .truncate ? [TerminalLayout.truncated(text, toWidth: room)]
                                                     : TerminalLayout.wrapped(text, width: room)
                        return lines.map { String(repeating: " ", count: indent) + $0 }.joined(separator: "\n")
                    }
                }
            }
            let w = widths()
            groups = [columns]
            if total(w, columns) > maxWidth && keyColumns < columns.count {
                let keys = Array(columns.prefix(keyColumns))
                let rest = Array(columns.dropFirst(keyColumns))
                groups = TerminalLayout.columnGroups(widths: w, keys: keyColumns, sections: [rest], maxWidth: maxWidth)
                    .map { keys + $0 }
            }
        }

        let widths = widths()
        func lines(_ row: [[String]], _ cols: [Int]) -> [String] {
            let height = cols.map { row[$0].count }.max() ?? 1
            return (0..<height).map { k in
                cols.map { i -> String in
                    let cell = k < row[i].count ? row[i][k] : ""
                    let padding = String(repeating: " ", count: max(0, widths[i] - Self.displayWidth(cell)))
                    return rightAligned.contains(i) ? padding + cell : cell + padding
                }.joined(separator: "  ").trimmingTrailingSpaces()
            }
        }
        return groups.map { cols -> String in
            var out = lines(headers.map { [$0] }, cols)
            out.append(cols.map { String(repeating: "-", count: widths[$0]) }.joined(separator: "  "))
            for (r, row) in cells.enumerated() {
                out += lines(row, cols)
                if let below, !below[r].isEmpty { out.append(below[r]) }
            }
            return out.joined(separator: "\n")
        }.joined(separator: "\n\n")
    }

    static func displayWidth(_ s: String) -> Int { TerminalText.displayWidth(s) }
}

/// The width text tables are fitted to: the terminal's when stdout is one (its window size, or
/// `COLUMNS` when the size cannot be read), otherwise `TerminalLayout.defaultWidth`.
///
/// `COLUMNS` is ignored when stdout is not a terminal: a shell sets it for the window it runs in,
/// not for the file or pipe the output goes to, so piped and saved output is the same wherever
/// it was made.
enum OutputWidth {
    /// Narrower than this a table cannot be fitted usefully; a tiny window wraps instead.
    static let minimum = 40

    static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        guard isatty(STDOUT_FILENO) == 1 else { return TerminalLayout.defaultWidth }
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 {
            return max(minimum, Int(size.ws_col))
        }
        if let text = environment["COLUMNS"], let columns = Int(text), columns > 0 {
            return max(minimum, columns)
        }
        return TerminalLayout.defaultWidth
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
