import CardCore
import Testing

/// JSON that cardsync prints may land on a terminal: scalars a terminal acts on are escaped,
/// and the value read back is the same.
struct JSONWriterTerminalSafetyTests {
    @Test("DEL, C1 controls and bidirectional overrides are \\u escapes, and read back exactly", arguments: [
        ("\u{7F}", #""\u007f""#),
        ("a\u{85}b", #""a\u0085b""#),
        ("\u{9B}31m", #""\u009b31m""#),
        ("x\u{202E}txt", #""x\u202etxt""#),
        ("\u{2066}\u{2069}", #""\u2066\u2069""#),
        ("\u{200E}\u{061C}", #""\u200e\u061c""#),
        ("王小明\u{1B}[2J", #""王小明\u001b[2J""#),
    ])
    func escaped(value: String, expected: String) throws {
        let written = JSONWriter.string(.string(value))
        #expect(written == expected)
        #expect(try JSONParser.parse(written) == .string(value))
    }

    @Test("ordinary text outside ASCII is written as it is")
    func plainTextUnchanged() {
        for text in ["芙蓉区社保卡服务网点", "é ß ø", "\u{2028}", "€", "\u{A0}"] {
            #expect(JSONWriter.string(.string(text)) == "\"" + text + "\"")
        }
    }
}
