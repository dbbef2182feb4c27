/// Parsers for PostgreSQL's text output formats, working on raw bytes so decoding a large
/// result does not allocate a `String` per cell.
enum TextFormat {
    private static let zero = UInt8(ascii: "0")
    private static let nine = UInt8(ascii: "9")
    private static let minus = UInt8(ascii: "-")
    private static let plus = UInt8(ascii: "+")

    /// A decimal integer, optionally signed; nil on anything else or on overflow.
    static func parseInt64(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        var index = bytes.startIndex
        guard index < bytes.endIndex else { return nil }
        var negative = false
        if bytes[index] == minus || bytes[index] == plus {
            negative = bytes[index] == minus
            index += 1
            guard index < bytes.endIndex else { return nil }
        }
        // Accumulate negatively so Int64.min parses without overflowing.
        var value: Int64 = 0
        while index < bytes.endIndex {
            let byte = bytes[index]
            guard byte >= zero && byte <= nine else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.subtractingReportingOverflow(Int64(byte - zero))
            if overflow1 || overflow2 { return nil }
            value = next
            index += 1
        }
        if negative { return value }
        let (positive, overflow) = Int64(0).subtractingReportingOverflow(value)
        return overflow ? nil : positive
    }

    /// ISO-style `date`, `timestamp` or `timestamptz` output as microseconds since 1970 UTC:
    /// `2024-05-01`, `2024-05-01 08:30:00.25`, `2024-05-01 08:30:00.123456+08`,
    /// `1900-01-01 00:00:00+05:53:28`, `0044-03-15 12:00:00+00 BC`. Years may exceed four digits.
    /// `infinity` has no microsecond value and is rejected.
    static func parseTimestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let end = bytes.count

        func digits(_ minimum: Int, _ maximum: Int) -> Int64? {
            var value: Int64 = 0
            var count = 0
            while index < end, count < maximum, bytes[index] >= zero, bytes[index] <= nine {
                value = value * 10 + Int64(bytes[index] - zero)
                index += 1
                count += 1
            }
            return count >= minimum ? value : nil
        }
        func expect(_ character: Unicode.Scalar) -> Bool {
            guard index < end, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        guard var year = digits(1, 9), expect("-"), let month = digits(2, 2), expect("-"),
              let day = digits(2, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var secondsOfDay: Int64 = 0
        var fraction: Int64 = 0
        var offsetSeconds: Int64 = 0
        if index < end, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "T") {
            index += 1
            guard let hour = digits(2, 2), expect(":"), let minute = digits(2, 2), expect(":"),
                  let second = digits(2, 2)
            else { return nil }
            secondsOfDay = hour * 3600 + minute * 60 + second
            if expect(".") {
                let start = index
                guard var value = digits(1, 6) else { return nil }
                for _ in 0..<(6 - (index - start)) { value *= 10 }
                fraction = value
            }
            if index < end, bytes[index] == plus || bytes[index] == minus {
                let sign: Int64 = bytes[index] == minus ? -1 : 1
                index += 1
                guard let hours = digits(2, 2) else { return nil }
                var offset = hours * 3600
                if expect(":") {
                    guard let minutes = digits(2, 2) else { return nil }
                    offset += minutes * 60
                    if expect(":") {
                        guard let seconds = digits(2, 2) else { return nil }
                        offset += seconds
                    }
                }
                offsetSeconds = sign * offset
            }
        }
        if index + 3 == end, bytes[index] == UInt8(ascii: " "), bytes[index + 1] == UInt8(ascii: "B"),
           bytes[index + 2] == UInt8(ascii: "C") {
            year = 1 - year  // 1 BC is astronomical year 0.
            index = end
        }
        guard index == end else { return nil }
        let days = daysSince1970(year: year, month: month, day: day)
        let seconds = days * 86_400 + secondsOfDay - offsetSeconds
        let (micro, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000)
        let (total, overflow2) = micro.addingReportingOverflow(fraction)
        return overflow1 || overflow2 ? nil : total
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// `bytea` hex output: `\x` followed by two hex digits per byte.
    static func parseHexBytea(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"),
              bytes.count % 2 == 0
        else { return nil }
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case zero...nine: byte - zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var result: [UInt8] = []
        result.reserveCapacity((bytes.count - 2) / 2)
        var index = 2
        while index < bytes.count {
            guard let high = nibble(bytes[index]), let low = nibble(bytes[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    /// A one-dimensional array literal `{a,"b c",NULL}` as unescaped element bytes, nil for a
    /// NULL element. Multi-dimensional arrays are rejected.
    static func parseArray(_ bytes: UnsafeBufferPointer<UInt8>) -> [[UInt8]?]? {
        var index = 0
        let end = bytes.count
        // Arrays with non-default bounds are printed as `[0:2]={...}`.
        if index < end, bytes[index] == UInt8(ascii: "[") {
            while index < end, bytes[index] != UInt8(ascii: "=") { index += 1 }
            index += 1
        }
        guard index < end, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        var elements: [[UInt8]?] = []
        if index < end, bytes[index] == UInt8(ascii: "}") { return index + 1 == end ? elements : nil }
        while index < end {
            var element: [UInt8] = []
            var quoted = false
            if bytes[index] == UInt8(ascii: "\"") {
                quoted = true
                index += 1
                while index < end, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    guard index < end else { return nil }
                    element.append(bytes[index])
                    index += 1
                }
                guard index < end else { return nil }
                index += 1  // closing quote
            } else {
                while index < end, bytes[index] != UInt8(ascii: ","), bytes[index] != UInt8(ascii: "}") {
                    if bytes[index] == UInt8(ascii: "{") { return nil }
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    guard index < end else { return nil }
                    element.append(bytes[index])
                    index += 1
                }
            }
            let isNull = !quoted && element.count == 4
                && String(decoding: element, as: UTF8.self).uppercased() == "NULL"
            elements.append(isNull ? nil : element)
            guard index < end else { return nil }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 == end ? elements : nil }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index += 1
        }
        return nil
    }

    /// The element type of common array types, so element decoders see e.g. `uuid`, not `uuid[]`.
    static func elementType(ofArray type: PostgresType) -> PostgresType {
        switch type {
        case .textArray: .text
        case .varcharArray: .varchar
        case .int8Array: .int8
        case .int4Array: .int4
        case .int2Array: .int2
        case .uuidArray: .uuid
        default: .unspecified
        }
    }
}
