import CardCore

/// Writes the few JSON shapes the workload needs straight into a byte buffer: no encoder, no
/// intermediate strings, keys in the order the spec shows them.
enum JSONBytes {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    static func append(_ s: StaticString, to b: inout [UInt8]) {
        b.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A quoted, escaped JSON string.
    static func appendString(_ s: String, to b: inout [UInt8]) {
        b.append(0x22)
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            b.append(contentsOf: utf8)
        } else {
            for c in utf8 {
                switch c {
                case 0x22: b.append(0x5C); b.append(0x22)
                case 0x5C: b.append(0x5C); b.append(0x5C)
                case 0x0A: b.append(0x5C); b.append(0x6E)
                case 0x0D: b.append(0x5C); b.append(0x72)
                case 0x09: b.append(0x5C); b.append(0x74)
                case 0..<0x20:
                    append("\\u00", to: &b)
                    b.append(hex[Int(c >> 4)]); b.append(hex[Int(c & 15)])
                default: b.append(c)
                }
            }
        }
        b.append(0x22)
    }

    static func appendInt(_ v: Int, to b: inout [UInt8]) {
        if v < 0 { b.append(0x2D); appendInt(-v, to: &b); return }
        if v < 10 { b.append(UInt8(0x30 + v)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { p in
            while x > 0 { p[n] = UInt8(0x30 + x % 10); x /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { b.append(p[i]) }
        }
    }

    /// Fixed-width zero-padded decimal.
    @inline(__always)
    static func appendPadded(_ v: Int, width: Int, to b: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var x = v
        while divisor > 0 {
            b.append(UInt8(0x30 + (x / divisor) % 10))
            x %= divisor
            divisor /= 10
        }
    }

    /// An unquoted UUID, lower case.
    static func appendUUID(_ u: UUIDBits, to b: inout [UInt8]) {
        func nibbles(_ v: UInt64, from: Int, to: Int) {
            var i = from
            while i < to {
                b.append(hex[Int((v >> UInt64(60 - 4 * i)) & 15)])
                i += 1
            }
        }
        nibbles(u.high, from: 0, to: 8); b.append(0x2D)
        nibbles(u.high, from: 8, to: 12); b.append(0x2D)
        nibbles(u.high, from: 12, to: 16); b.append(0x2D)
        nibbles(u.low, from: 0, to: 4); b.append(0x2D)
        nibbles(u.low, from: 4, to: 16)
    }

    static func appendQuotedUUID(_ u: UUIDBits, to b: inout [UInt8]) {
        b.append(0x22); appendUUID(u, to: &b); b.append(0x22)
    }

    /// An unquoted RFC 3339 timestamp at +08:00, from seconds since 1970 (UTC).
    static func appendTimestamp(_ seconds: Int64, to b: inout [UInt8]) {
        let local = seconds + ShanghaiTime.offset
        let day = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let second = Int(local - day * 86_400)
        let (y, m, d) = Timestamp.civilFromDays(Int(day))
        appendPadded(y, width: 4, to: &b); b.append(0x2D)
        appendPadded(m, width: 2, to: &b); b.append(0x2D)
        appendPadded(d, width: 2, to: &b); b.append(0x54)
        appendPadded(second / 3600, width: 2, to: &b); b.append(0x3A)
        appendPadded(second / 60 % 60, width: 2, to: &b); b.append(0x3A)
        appendPadded(second % 60, width: 2, to: &b)
        append("+08:00", to: &b)
    }

    static func appendQuotedTimestamp(_ seconds: Int64, to b: inout [UInt8]) {
        b.append(0x22); appendTimestamp(seconds, to: &b); b.append(0x22)
    }

    static func appendDate(_ date: CivilDate, to b: inout [UInt8]) {
        b.append(0x22)
        appendPadded(date.year, width: 4, to: &b); b.append(0x2D)
        appendPadded(date.month, width: 2, to: &b); b.append(0x2D)
        appendPadded(date.day, width: 2, to: &b)
        b.append(0x22)
    }
}

/// Times in the workload are whole seconds since 1970 (UTC); every wall-clock rule (office
/// hours, working days, dates) is in China Standard Time, +08:00, which has no daylight saving.
enum ShanghaiTime {
    static let offset: Int64 = 8 * 3600

    /// The instant of a local day number (days since 1970-01-01) and second of that day.
    @inline(__always)
    static func instant(day: Int, second: Int) -> Int64 { Int64(day) * 86_400 + Int64(second) - offset }

    /// The local day number of an instant.
    @inline(__always)
    static func day(of t: Int64) -> Int {
        let local = t + offset
        return Int(local >= 0 ? local / 86_400 : (local - 86_399) / 86_400)
    }

    /// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
    @inline(__always)
    static func weekday(_ day: Int) -> Int { ((day + 3) % 7 + 7) % 7 }

    static func isWorkingDay(_ day: Int) -> Bool { weekday(day) < 5 }

    /// The `n`-th working day after `day`.
    static func addingWorkingDays(_ n: Int, to day: Int) -> Int {
        var d = day, left = n
        while left > 0 {
            d += 1
            if isWorkingDay(d) { left -= 1 }
        }
        return d
    }
}
