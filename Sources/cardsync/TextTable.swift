import CardCore

/// A plain aligned table for terminal output; wide (CJK) characters count two columns.
struct TextTable {
    var headers: [String]
    var rows: [[String]]
    /// Columns aligned right (numbers).
    var rightAligned: Set<Int> = []

    func render() -> String {
        // Cells can hold names and notes from agencies' queues: never let them drive the terminal.
        let headers = headers.map { TerminalText.escapingControls($0) }
        let rows = rows.map { $0.map { TerminalText.escapingControls($0) } }
        var widths = headers.map(Self.displayWidth)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], Self.displayWidth(cell))
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let padding = String(repeating: " ", count: max(0, widths[i] - Self.displayWidth(cell)))
                return rightAligned.contains(i) ? padding + cell : cell + padding
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        var out = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }

    static func displayWidth(_ s: String) -> Int { TerminalText.displayWidth(s) }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
