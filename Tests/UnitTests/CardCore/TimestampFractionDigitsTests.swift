import Testing
@testable import CardCore

/// `occurred_at` is "RFC 3339 timestamp with an explicit offset" (queue-format.md). RFC 3339's
/// `time-secfrac = "." 1*DIGIT` allows any number of fraction digits; cardsync keeps
/// microseconds and rounds on the 7th digit, half up.
@Suite("RFC 3339 timestamp: any number of fraction digits")
struct TimestampFractionDigitsTests {
    func parse(_ text: String) -> Timestamp? { Timestamp(rfc3339: text) }

    /// Microseconds since 1970 of a whole second, for comparisons.
    func micros(_ text: String) -> Int64 { parse(text)!.microseconds }

    @Test("7, 9, 12 and 30 fraction digits parse, rounded to microseconds")
    func manyDigitsParse() throws {
        let base = micros("2026-10-03T09:15:27+08:00")
        #expect(try #require(parse("2026-10-03T09:15:27.1234567+08:00")).microseconds == base + 123_457)
        #expect(try #require(parse("2026-10-03T09:15:27.123456789+08:00")).microseconds == base + 123_457)
        #expect(try #require(parse("2026-10-03T09:15:27.123456499999+08:00")).microseconds == base + 123_456)
        // Thirty digits: 123456, then 4 and 23 nines (just under half a microsecond): rounds down.
        let thirty = "2026-10-03T09:15:27.1234564" + String(repeating: "9", count: 23) + "Z"
        #expect(thirty.count == "2026-10-03T09:15:27.".count + 30 + 1)
        #expect(try #require(parse(thirty)).microseconds == micros("2026-10-03T09:15:27Z") + 123_456)
        let offset: Int32? = parse("2026-10-03T09:15:27.123456789+08:00")?.offsetSeconds
        #expect(offset == 28_800)
    }

    @Test("the 7th digit rounds half up: 5 rounds up, 4 rounds down")
    func seventhDigitRoundsHalfUp() {
        let base = micros("2026-10-03T09:15:27Z")
        #expect(micros("2026-10-03T09:15:27.0000005Z") == base + 1)
        #expect(micros("2026-10-03T09:15:27.0000004Z") == base)
        #expect(micros("2026-10-03T09:15:27.0000004999999Z") == base)
        #expect(micros("2026-10-03T09:15:27.0000015Z") == base + 2)
        // Before 1970 the instant rounds toward the later time too (microseconds are negative).
        #expect(micros("1969-12-31T23:59:59.9999995Z") == 0)
    }

    @Test("rounding carries into the next second, minute, hour, day, month and year")
    func roundingCarries() {
        #expect(parse("2026-10-03T09:15:27.9999995+08:00")?.rfc3339 == "2026-10-03T09:15:28+08:00")
        #expect(parse("2026-10-03T09:15:59.99999951+08:00")?.rfc3339 == "2026-10-03T09:16:00+08:00")
        #expect(parse("2026-10-03T09:59:59.9999999+08:00")?.rfc3339 == "2026-10-03T10:00:00+08:00")
        #expect(parse("2026-10-03T23:59:59.9999995+08:00")?.rfc3339 == "2026-10-04T00:00:00+08:00")
        #expect(parse("2026-02-28T23:59:59.9999995-05:00")?.rfc3339 == "2026-03-01T00:00:00-05:00")
        #expect(parse("2028-02-28T23:59:59.9999995Z")?.rfc3339 == "2028-02-29T00:00:00Z")
        #expect(parse("2026-12-31T23:59:59.99999950000+08:00")?.rfc3339 == "2027-01-01T00:00:00+08:00")
        // A leap second counts as :59, so its rounding carries into the next day as well.
        #expect(parse("2026-12-31T23:59:60.9999995Z")?.rfc3339 == "2027-01-01T00:00:00Z")
        // Six nines and a 4 stay in the same second.
        #expect(parse("2026-12-31T23:59:59.9999994Z")?.rfc3339 == "2026-12-31T23:59:59.999999Z")
    }

    @Test("six or fewer digits are unchanged")
    func fewDigitsAreExact() {
        let base = micros("2026-10-03T09:15:27Z")
        #expect(micros("2026-10-03T09:15:27.1Z") == base + 100_000)
        #expect(micros("2026-10-03T09:15:27.123456Z") == base + 123_456)
        #expect(micros("2026-10-03T09:15:27.000001Z") == base + 1)
    }

    @Test("a dot without digits, or digits followed by junk, is still not a timestamp")
    func malformedFractionsAreRejected() {
        for text in ["2026-10-03T09:15:27.Z", "2026-10-03T09:15:27.+08:00", "2026-10-03T09:15:27.12a+08:00",
                     "2026-10-03T09:15:27.1234567", "2026-10-03T09:15:27.1234567+8:00"] {
            #expect(parse(text) == nil, "\(text)")
        }
    }

    @Test("a hundred thousand fraction digits parse without trouble")
    func veryLongFraction() {
        let text = "2026-10-03T09:15:27." + String(repeating: "5", count: 100_000) + "+08:00"
        #expect(parse(text)?.microseconds == micros("2026-10-03T09:15:27+08:00") + 555_556)
    }
}
