import Testing
@testable import CardCore

/// Every value an outbox line can carry reaches these types. Whatever the bytes, they must
/// answer with an error (or nil) that the validator turns into a quarantine code: a Swift
/// runtime trap would stop the whole sync at that line, on every run.
@Suite("Hostile input: an error, never a trap (CardCore)")
struct HostileInputTests {
    func parseError(_ bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    // MARK: JSON

    @Test("10,000 and 1,000,000 nested arrays are an error (the depth limit), not a stack overflow")
    func deepNestingIsAnError() {
        for depth in [10_000, 1_000_000] {
            let bytes = [UInt8](repeating: UInt8(ascii: "["), count: depth) + [UInt8](repeating: UInt8(ascii: "]"), count: depth)
            #expect(parseError(bytes)?.reason == .tooDeep(limit: JSONParser.maximumDepth), "depth \(depth)")
        }
        // Objects and arrays alternating, inside an otherwise ordinary line.
        let inner = String(repeating: #"{"a":["#, count: 5_000) + "1" + String(repeating: "]}", count: 5_000)
        let line = #"{"seq":1,"data":"# + inner + "}"
        #expect(parseError(Array(line.utf8))?.reason == .tooDeep(limit: JSONParser.maximumDepth))
        // Unclosed: the limit is reached before the missing end.
        #expect(parseError([UInt8](repeating: UInt8(ascii: "["), count: 10_000))?.reason == .tooDeep(limit: 64))
        // Exactly at the limit is fine.
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(parseError(Array(ok.utf8)) == nil)
    }

    @Test("numbers beyond Int64 and Double: a double, or numberOutOfRange")
    func hugeNumbers() throws {
        #expect(try JSONParser.parse("1180591620717411303424") == .double(1_180_591_620_717_411_303_424))
        #expect(parseError(Array("1e400".utf8))?.reason == .numberOutOfRange)
        #expect(parseError(Array("-1e400".utf8))?.reason == .numberOutOfRange)
        let digits = String(repeating: "9", count: 400)
        #expect(parseError(Array(digits.utf8))?.reason == .numberOutOfRange)
        #expect(try JSONParser.parse("1e-400") == .double(0))
        // intValue of a huge double is nil rather than a conversion trap.
        #expect(JSONValue.double(1e300).intValue == nil)
        #expect(JSONValue.double(.nan).intValue == nil)
    }

    @Test("strings: lone surrogates, invalid UTF-8, a BOM and control characters are errors")
    func hostileStrings() {
        #expect(parseError(Array(#"{"a":"\ud800"}"#.utf8))?.reason == .invalidUnicodeEscape)
        #expect(parseError(Array(#"{"a":"\udc00"}"#.utf8))?.reason == .invalidUnicodeEscape)
        #expect(parseError(Array(#"{"a":"\ud800\u0041"}"#.utf8))?.reason == .invalidUnicodeEscape)
        #expect(parseError(Array(#"{"a":"\ud800\"#.utf8)) != nil)
        #expect(parseError(Array(#"{"a":"\u12"}"#.utf8))?.reason == .invalidUnicodeEscape)
        #expect(parseError(Array(#"{"a":"x"#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8))?.reason == .invalidUTF8)
        #expect(parseError([0xEF, 0xBB, 0xBF] + Array(#"{"a":1}"#.utf8))?.reason == .unexpectedByte(0xEF))
        #expect(parseError(Array(#"{"a":"x"#.utf8) + [0x01] + Array(#""}"#.utf8))?.reason == .controlCharacterInString)
        #expect(parseError(Array(#"{"a":1,"a":2}"#.utf8))?.reason == .duplicateKey("a"))
        // A final byte cut in the middle of a character.
        #expect(parseError(Array(Array(#"{"a":"中"#.utf8).dropLast(2)))?.reason == .invalidUTF8)
    }

    // MARK: Time

    @Test("timestamps: out-of-range fields and offsets are nil; years 0000 and 9999 parse and format")
    func hostileTimestamps() throws {
        for text in ["2026-10-03T09:15:27+99:99", "2026-10-03T09:15:27+24:00", "2026-10-03T09:15:27+23:60",
                     "2026-13-03T09:15:27Z", "2026-02-29T09:15:27Z", "2026-10-03T24:00:00Z", "2026-10-03T09:60:00Z",
                     "2026-10-03T09:15:61Z", "-026-10-03T09:15:27Z", "2026-10-03T09:15:27", "2026-10-03T09:15:27+08",
                     "２０２６-10-03T09:15:27Z", "", "2026", String(repeating: "9", count: 100)] {
            #expect(Timestamp(rfc3339: text) == nil, "\(text)")
        }
        let first = try #require(Timestamp(rfc3339: "0000-01-01T00:00:00+08:00"))
        #expect(first.rfc3339 == "0000-01-01T00:00:00+08:00")
        #expect(first.civilDate(offsetSeconds: first.offsetSeconds) == (0, 1, 1))
        // Year 0000 seen from UTC is the year before: written with a sign, not garbled.
        #expect(first.format(offsetSeconds: 0) == "-0001-12-31T16:00:00Z")
        let last = try #require(Timestamp(rfc3339: "9999-12-31T23:59:59.9999999-23:59"))
        #expect(last.rfc3339 == "10000-01-01T00:00:00-23:59")
        // Instants at the ends of Int64 (not from parsing, but from arithmetic) still format.
        #expect(!Timestamp(microseconds: .max, offsetSeconds: 14 * 3600).rfc3339.isEmpty)
        #expect(!Timestamp(microseconds: .min, offsetSeconds: -14 * 3600).rfc3339.isEmpty)
        // Half a second before 1970 is still on 1969-12-31.
        let before = try #require(Timestamp(rfc3339: "1969-12-31T23:59:59.5Z"))
        #expect(before.civilDate(offsetSeconds: 0) == (1969, 12, 31))
    }

    // MARK: Identity numbers, phones, dates

    @Test("identity numbers with non-ASCII digits are notDigits, with the length a person counts")
    func identityNumbersWithNonASCIIDigits() {
        let fullWidth = "４３０１０２２０１９０３１５００１Ｘ" // 18 full-width characters, 54 bytes
        #expect(IdentityNumber.validate(fullWidth) == .failure(.notDigits))
        let arabicIndic = String(repeating: "\u{0664}", count: 17) + "X"
        #expect(IdentityNumber.validate(arabicIndic) == .failure(.notDigits))
        #expect(IdentityNumber.validate("４３０１") == .failure(.wrongLength(4)))
        // Six full-width digits are 18 bytes: still not ASCII digits.
        #expect(IdentityNumber.validate("４３０１０２") == .failure(.notDigits))
        #expect(IdentityNumber.validate("") == .failure(.wrongLength(0)))
        #expect(IdentityNumber.validate(String(repeating: "1", count: 100_000)) == .failure(.wrongLength(100_000)))
        // Characters 7-14 that are no date: year 0000, month 13, 30 February.
        for birth in ["00000101", "20191301", "20190230", "99991232"] {
            let first17 = "430102" + birth + "001"
            let number = first17 + String(IdentityNumber.checkCharacter(for: first17)!)
            #expect(IdentityNumber.validate(number) == .failure(.impossibleBirthDate), "\(birth)")
        }
    }

    @Test("phones and dates with hostile text are simply invalid")
    func phonesAndDates() {
        for phone in ["１３８１２３４５６７８", "1381234567８", "-", "0-", "0731--8456123", "07-3184561234", "",
                      String(repeating: "1", count: 10_000), "0\u{0663}\u{0663}-84561234"] {
            #expect(!PhoneNumber.isValid(phone), "\(phone)")
        }
        #expect(PhoneNumber.masked("1") == "*")
        for text in ["2019-02-30", "2019-13-01", "0000-01-01", "2019-3-15", "２０１９-03-15", "2019-03-15T00:00:00Z", ""] {
            #expect(CivilDate(iso: text) == nil, "\(text)")
        }
        #expect(CivilDate(iso: "9999-12-31") != nil)
    }
}
