import CardCore
import Testing

/// The one CSV writer behind `report … --format csv` and `conflicts list --format csv`.
struct CSVWriterTests {
    @Test("a header row and data rows, CRLF line ends, a byte-order mark first")
    func documentShape() {
        var csv = CSVWriter(header: ["agency", "received"])
        csv.append(["CS-FR-001", "12"])
        csv.append(["芙蓉区", ""])
        #expect(csv.text == "\u{FEFF}agency,received\r\nCS-FR-001,12\r\n芙蓉区,\r\n")
    }

    @Test("commas, quotes and every kind of line break are quoted, quotes doubled", arguments: [
        ("a,b", "\"a,b\""),
        ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ("two\nlines", "\"two\nlines\""),
        ("crlf\r\ninside", "\"crlf\r\ninside\""),  // one Character, two scalars
        ("lone\rcr", "\"lone\rcr\""),
        ("plain", "plain"),
        ("", ""),
    ])
    func quoting(value: String, expected: String) {
        #expect(CSVWriter.cell(value) == expected)
    }

    @Test("cells a spreadsheet would evaluate open as text", arguments: [
        ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "\"'\rCR\""),
        ("-", "'-"),
        ("+.5", "'+.5"),
        ("-1.", "'-1."),
    ])
    func formulasNeutralised(value: String, expected: String) {
        #expect(CSVWriter.cell(value) == expected)
    }

    @Test("signed plain numbers stay numbers", arguments: ["-3", "+12", "-0.25", "0", "42", "-1234567.89"])
    func numbersUntouched(value: String) {
        #expect(CSVWriter.cell(value) == value)
    }
}
