/// Fitting tables and text into a terminal of a given width, counting columns as
/// `TerminalText.displayWidth` does (wide CJK characters take two).
///
/// Shared by the reports (CardReports) and the command tables (cardsync) so that both split,
/// truncate and wrap by the same rules. Callers escape control characters first
/// (`TerminalText.escapingControls`): the functions here measure what will be printed.
public enum TerminalLayout {
    /// The width text output is laid out for when stdout is not a terminal (a pipe, a file):
    /// wide enough for the reports' grouped tables, narrow enough for a terminal of 120 columns.
    public static let defaultWidth = 100

    /// `s` cut to at most `width` columns, ending with `…` when something was cut. Cuts between
    /// grapheme clusters only, so a wide character or a letter with its combining mark is never
    /// split: the result may be one column narrower than `width`.
    public static func truncated(_ s: String, toWidth width: Int) -> String {
        guard TerminalText.displayWidth(s) > width else { return s }
        guard width >= 1 else { return "" }
        var out = ""
        var used = 0
        for ch in s {
            let w = TerminalText.displayWidth(String(ch))
            if used + w > width - 1 { break }
            out.append(ch)
            used += w
        }
        while out.last == " " { out.removeLast() }
        return out + "…"
    }

    /// `s` wrapped into lines of at most `width` columns: at spaces where there are any, and
    /// anywhere between characters in a run without spaces (Chinese text has none, and may be
    /// broken between any two characters). Never splits a character.
    public static func wrapped(_ s: String, width: Int) -> [String] {
        let width = max(width, 2)
        guard TerminalText.displayWidth(s) > width else { return [s] }
        var lines: [String] = []
        var line = ""
        var lineWidth = 0
        func flush() {
            while line.last == " " { line.removeLast() }
            lines.append(line)
            line = ""
            lineWidth = 0
        }
        for word in s.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
            let w = TerminalText.displayWidth(word)
            if lineWidth > 0 && lineWidth + 1 + w <= width {
                line += " " + word
                lineWidth += 1 + w
                continue
            }
            if lineWidth > 0 { flush() }
            if w <= width {
                line = word
                lineWidth = w
                continue
            }
            // A word (or a run of Chinese) longer than a line: break it between characters.
            for ch in word {
                let cw = TerminalText.displayWidth(String(ch))
                if lineWidth + cw > width { flush() }
                line.append(ch)
                lineWidth += cw
            }
        }
        if !line.isEmpty { flush() }
        return lines
    }

    /// Splits the non-key columns into consecutive groups, each printed as a table of its own
    /// after the key columns, so that every table fits `maxWidth`.
    ///
    /// - `widths`: every column's width (cells already truncated as they will print).
    /// - `keys`: the number of leading columns every table repeats (code, name).
    /// - `sections`: the non-key columns in groups that belong together (intake, decisions, …);
    ///   a section is kept in one table when it fits, and split column by column only when it
    ///   alone is wider than a table can be.
    /// Consecutive sections share a table while they fit.
    public static func columnGroups(widths: [Int], keys: Int, sections: [[Int]], maxWidth: Int,
                                    separator: Int = 2) -> [[Int]] {
        let keyWidth = widths.prefix(keys).reduce(0, +) + separator * max(0, keys - 1)
        func width(_ columns: [Int]) -> Int {
            keyWidth + columns.reduce(0) { $0 + separator + widths[$1] } - (keys == 0 && !columns.isEmpty ? separator : 0)
        }
        var groups: [[Int]] = []
        var current: [Int] = []
        for section in sections where !section.isEmpty {
            if width(current + section) <= maxWidth {
                current += section
                continue
            }
            if !current.isEmpty { groups.append(current) }
            current = []
            for column in section {
                if !current.isEmpty && width(current + [column]) > maxWidth {
                    groups.append(current)
                    current = []
                }
                current.append(column)
            }
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }
}
