/// An instant with the UTC offset it was written with.
///
/// Equality and ordering compare the instant only, so `09:00+08:00` equals `01:00Z`.
/// Parsing and formatting are hand-written over UTF-8 bytes: sync parses millions of these.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64
    /// The offset from UTC the timestamp was written with, in seconds.
    public var offsetSeconds: Int32

    public init(microseconds: Int64, offsetSeconds: Int32 = 0) {
        self.microseconds = microseconds
        self.offsetSeconds = offsetSeconds
    }

    public init(secondsSince1970 seconds: Double, offsetSeconds: Int32 = 0) {
        self.init(microseconds: Int64((seconds * 1_000_000).rounded()), offsetSeconds: offsetSeconds)
    }

    public var secondsSince1970: Double { Double(microseconds) / 1_000_000 }

    public static func == (a: Timestamp, b: Timestamp) -> Bool { a.microseconds == b.microseconds }
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.microseconds < b.microseconds }
    public func hash(into hasher: inout Hasher) { hasher.combine(microseconds) }

    /// RFC 3339 with the original offset, e.g. `2026-10-03T09:15:27+08:00`.
    public var description: String { rfc3339 }

    // MARK: Parsing

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`); the offset is required.
    ///
    /// The fraction may have any number of digits (RFC 3339 says `1*DIGIT`), but an instant is
    /// kept in whole microseconds: the first six digits are kept and the 7th rounds half up
    /// (5-9 adds a microsecond, toward the later instant; the digits after it are ignored).
    /// The added microsecond carries like any other, so `23:59:59.9999995` becomes `00:00:00`
    /// of the next day. A leap second (`:60`) is read as `:59`.
    public init?<S: StringProtocol>(rfc3339 text: S) {
        var copy = String(text)
        let parsed = copy.withUTF8 { Timestamp.parse(UnsafeBufferPointer(rebasing: $0[...])) }
        guard let parsed else { return nil }
        self = parsed
    }

    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        let n = b.count
        guard n >= 20 else { return nil }
        func digit(_ i: Int) -> Int? {
            let c = b[i]
            return (c >= 0x30 && c <= 0x39) ? Int(c - 0x30) : nil
        }
        func number(_ start: Int, _ count: Int) -> Int? {
            var v = 0
            for i in start..<(start + count) {
                guard let d = digit(i) else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard let year = number(0, 4), b[4] == 0x2D, let month = number(5, 2), b[7] == 0x2D,
              let day = number(8, 2), b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20,
              let hour = number(11, 2), b[13] == 0x3A, let minute = number(14, 2), b[16] == 0x3A,
              let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Timestamp.daysInMonth(year: year, month: month),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var i = 19
        var micros = 0
        if i < n, b[i] == 0x2E {
            i += 1
            var digits = 0
            var roundUp = false
            while i < n, let d = digit(i) {
                if digits < 6 {
                    micros = micros * 10 + d
                } else if digits == 6 {
                    roundUp = d >= 5
                }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            // Fewer than six digits are tenths, hundredths, ...: scale up to microseconds.
            // (Counting the missing digits down avoids a range that would be empty, or
            // inverted when there are more than six digits.)
            var missing = 6 - min(digits, 6)
            while missing > 0 {
                micros *= 10
                missing -= 1
            }
            if roundUp { micros += 1 } // may reach 1_000_000: the second carries below
        }
        guard i < n else { return nil }
        var offset = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            let sign = b[i] == 0x2D ? -1 : 1
            guard i + 6 == n, let oh = number(i + 1, 2), b[i + 3] == 0x3A, let om = number(i + 4, 2),
                  oh <= 23, om <= 59
            else { return nil }
            offset = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            return nil
        }
        guard i == n else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        let localSeconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59))
        let utcSeconds = localSeconds - Int64(offset)
        return Timestamp(microseconds: utcSeconds * 1_000_000 + Int64(micros), offsetSeconds: Int32(offset))
    }

    // MARK: Formatting

    /// RFC 3339 in the timestamp's own offset; fractional seconds only when present.
    public var rfc3339: String { format(offsetSeconds: offsetSeconds) }

    /// RFC 3339 in a chosen offset (for example +08:00 for Asia/Shanghai).
    public func format(offsetSeconds offset: Int32) -> String {
        // Whole seconds first, then the offset: adding the offset in microseconds could
        // overflow for an instant near the ends of Int64.
        let (utcSeconds, microPart) = microseconds.floorDividedBy(1_000_000)
        let (days, secondOfDay) = (utcSeconds + Int64(offset)).floorDividedBy(86_400)
        let (y, m, d) = Timestamp.civilFromDays(Int(days))
        let hh = Int(secondOfDay / 3600), mm = Int(secondOfDay % 3600 / 60), ss = Int(secondOfDay % 60)
        var out = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2))"
        if microPart != 0 {
            var frac = pad(Int(microPart), 6)
            while frac.hasSuffix("0") { frac.removeLast() }
            out += "." + frac
        }
        if offset == 0 {
            out += "Z"
        } else {
            let a = abs(Int(offset))
            out += (offset < 0 ? "-" : "+") + pad(a / 3600, 2) + ":" + pad(a % 3600 / 60, 2)
        }
        return out
    }

    /// The calendar date (year, month, day) of this instant at the given UTC offset.
    public func civilDate(offsetSeconds offset: Int32) -> (year: Int, month: Int, day: Int) {
        // Floor, not truncation: half a second before 1970 is still 1969-12-31.
        let local = microseconds.floorDividedBy(1_000_000).quotient + Int64(offset)
        return Timestamp.civilFromDays(Int(local.floorDividedBy(86_400).quotient))
    }

    // MARK: Calendar arithmetic (proleptic Gregorian, Howard Hinnant's days-from-civil)

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a civil date.
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number since 1970-01-01.
    public static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// `value` in decimal with leading zeros up to `width` digits; a negative value (a year before
/// 0000, only reachable by moving year 0000 to an earlier offset) gets its sign before the zeros.
private func pad(_ value: Int, _ width: Int) -> String {
    let s = String(value.magnitude)
    let digits = s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    return value < 0 ? "-" + digits : digits
}

extension Int64 {
    /// Division rounding toward negative infinity, with a non-negative remainder.
    func floorDividedBy(_ d: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = self / d
        var r = self % d
        if r < 0 { q -= 1; r += d }
        return (q, r)
    }
}
