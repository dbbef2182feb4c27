/// Writes CSV the one way cardsync writes it: RFC 4180 with CRLF line ends, UTF-8 with a
/// byte-order mark (spreadsheet programs then read Chinese text correctly), and cells that a
/// spreadsheet would run as a formula neutralised.
///
/// ```swift
/// var csv = CSVWriter(header: ["agency", "received"])
/// csv.append(["CS-FR-001", "12"])
/// print(csv.text)
/// ```
///
/// Values in cardsync's CSV can come from agencies' queues (names, notes, reasons), so a cell
/// such as `=HYPERLINK(…)` must open as text, never as a formula (CWE-1236). A cell that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, which spreadsheet
/// programs treat as "this is text" and do not show; plain numbers (`-3`, `+1.5`) are left alone
/// so that figures stay figures.
public struct CSVWriter: Sendable {
    /// The document so far: the byte-order mark, the header row, then every appended row.
    public private(set) var text: String

    /// Starts a document with its header row.
    public init(header: [String]) {
        text = "\u{FEFF}"
        append(header)
    }

    /// Appends one row; each value becomes one cell.
    public mutating func append(_ row: [String]) {
        text += row.map(Self.cell).joined(separator: ",")
        text += "\r\n"
    }

    /// One cell: neutralised if a spreadsheet would evaluate it, then quoted (quotes doubled)
    /// when it holds a comma, a quote or a line break.
    public static func cell(_ value: String) -> String {
        var value = value
        if isFormulaLike(value) { value = "'" + value }
        // Scalars, not Characters: "\r\n" is one Character and would slip past a Character test.
        let needsQuotes = value.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
        guard needsQuotes else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// True when a spreadsheet would treat the cell as a formula or a command.
    static func isFormulaLike(_ value: String) -> Bool {
        guard let first = value.unicodeScalars.first else { return false }
        switch first {
        case "=", "@", "\t", "\r":
            return true
        case "+", "-":
            return !isPlainNumber(value)
        default:
            return false
        }
    }

    /// `-12`, `+3.5`: a sign, digits, at most one decimal point with digits on both sides.
    private static func isPlainNumber(_ value: String) -> Bool {
        var scalars = Substring(value).unicodeScalars.dropFirst()
        guard !scalars.isEmpty else { return false }
        var seenPoint = false
        var digitsBefore = 0, digitsAfter = 0
        while let scalar = scalars.popFirst() {
            switch scalar {
            case "0"..."9":
                if seenPoint { digitsAfter += 1 } else { digitsBefore += 1 }
            case "." where !seenPoint && digitsBefore > 0:
                seenPoint = true
            default:
                return false
            }
        }
        return digitsBefore > 0 && (!seenPoint || digitsAfter > 0)
    }
}
