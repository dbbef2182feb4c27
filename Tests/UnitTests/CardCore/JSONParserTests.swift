import Testing
@testable import CardCore

@Suite("JSON parser")
struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    func error(_ bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    func error(_ text: String) -> JSONParseError? { error(Array(text.utf8)) }

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse(" false ") == .bool(false))
        #expect(try parse("\"x\"") == .string("x"))
        #expect(try parse("\n\t 17\r\n") == .int(17))
    }

    @Test func integersFitInInt64BecomeInt() throws {
        #expect(try parse("0") == .int(0))
        #expect(try parse("-0") == .int(0))
        #expect(try parse("9223372036854775807") == .int(Int64.max))
        #expect(try parse("-9223372036854775808") == .int(Int64.min))
        #expect(try parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parse("-19223372036854775809") == .double(-1.9223372036854775809e19))
    }

    @Test func fractionsAndExponentsBecomeDouble() throws {
        #expect(try parse("1.0") == .double(1))
        #expect(try parse("1e2") == .double(100))
        #expect(try parse("-2.5E-3") == .double(-0.0025))
        #expect(try parse("0.1") == .double(0.1))
        #expect(try parse("1E+2") == .double(100))
    }

    @Test func invalidNumbersAreRejected() {
        for text in ["01", "-", "1.", ".5", "1e", "1e+", "+1", "-a", "0x10", "NaN", "Infinity"] {
            #expect(error(text) != nil, "\(text)")
        }
        #expect(error("1e400")?.reason == .numberOutOfRange)
    }

    @Test func stringEscapes() throws {
        #expect(try parse(#""a\"b\\c\/d\be\ff\ng\rh\ti""#) == .string("a\"b\\c/d\u{8}e\u{C}f\ng\rh\ti"))
        #expect(try parse(#""\u0041\u00e9\u4e2d""#) == .string("Aé中"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func surrogatePairs() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""x\uD834\uDD1Ey""#) == .string("x𝄞y"))
        #expect(error(#""\ud83d""#)?.reason == .invalidUnicodeEscape)
        #expect(error(#""\ud83dx""#)?.reason == .invalidUnicodeEscape)
        #expect(error(#""\ude00""#)?.reason == .invalidUnicodeEscape)
        #expect(error(#""\ud83d\u0041""#)?.reason == .invalidUnicodeEscape)
        #expect(error(#""\u12g4""#)?.reason == .invalidUnicodeEscape)
    }

    @Test func badStrings() {
        #expect(error(#""\x""#)?.reason == .invalidEscape)
        #expect(error("\"a\nb\"")?.reason == .controlCharacterInString)
        #expect(error("\"abc")?.reason == .unexpectedEnd)
    }

    @Test func chineseText() throws {
        let v = try parse(#"{"name": "王小明", "address": "长沙市芙蓉区五一大道100号"}"#)
        #expect(v["name"] == .string("王小明"))
        #expect(v["address"]?.stringValue == "长沙市芙蓉区五一大道100号")
    }

    @Test func invalidUTF8IsReportedDistinctly() {
        // A lone continuation byte inside a string.
        var bytes = Array(#"{"name": "ab"}"#.utf8)
        bytes.insert(0x80, at: 11)
        let e = error(bytes)
        #expect(e?.reason == .invalidUTF8)
        #expect(e?.offset == 11)
        #expect(e?.description.contains("not valid UTF-8") == true)
        // Overlong encoding, surrogate encoded in UTF-8, truncated sequence, byte above F4.
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE4, 0xB8], [0xF5, 0x80, 0x80, 0x80]] {
            #expect(error([0x22] + bad + [0x22])?.reason == .invalidUTF8)
        }
        // Invalid UTF-8 wins over a syntax error earlier in the text.
        #expect(error([0x7B, 0x7B, 0xFF])?.reason == .invalidUTF8)
        #expect(JSONParser.isValidUTF8(Array("王小明 ok".utf8)))
        #expect(!JSONParser.isValidUTF8([0x61, 0xFF]))
    }

    @Test func nestingDepthIsLimited() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try parse(ok) != .null)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(error(deep)?.reason == .tooDeep(limit: 64))
        let deepObjects = String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(error(deepObjects)?.reason == .tooDeep(limit: 64))
    }

    @Test func duplicateKeysAreRejectedByDefault() throws {
        let text = #"{"seq": 1, "seq": 2}"#
        #expect(error(text)?.reason == .duplicateKey("seq"))
        let v = try JSONParser.parse(text, options: .init(duplicateKeys: .lastWins))
        #expect(v["seq"] == .int(2))
    }

    @Test func structuralErrorsCarryOffsets() {
        #expect(error("")?.reason == .unexpectedEnd)
        #expect(error("{")?.reason == .unexpectedEnd)
        #expect(error(#"{"a" 1}"#)?.offset == 5)
        #expect(error(#"{"a":1,}"#)?.reason == .unexpectedByte(UInt8(ascii: "}")))
        #expect(error("[1,2,]") != nil)
        #expect(error("[1 2]")?.offset == 3)
        #expect(error("{} x")?.reason == .trailingCharacters)
        #expect(error("{} x")?.offset == 3)
        #expect(error("tru")?.reason == .unexpectedEnd)
        #expect(error("nul1") != nil)
        #expect(error("{1:2}") != nil)
    }

    @Test func objectsAndArrays() throws {
        let v = try parse(#" { "a" : [ 1 , 2.5 , "x" , null , true , { } , [ ] ] , "b" : { "c" : -3 } } "#)
        #expect(v == .object([
            "a": .array([.int(1), .double(2.5), .string("x"), .null, .bool(true), .object([:]), .array([])]),
            "b": .object(["c": .int(-3)]),
        ]))
    }

    @Test func parsesFromRawBufferSliceAndString() throws {
        let bytes = Array(#"xx{"k":"v"}yy"#.utf8)
        let v = try bytes.withUnsafeBytes { raw in
            try JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[2..<11]))
        }
        #expect(v == ["k": "v"])
        #expect(try JSONParser.parse(bytes[2..<11]) == ["k": "v"])
    }
}
