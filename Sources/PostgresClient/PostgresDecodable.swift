import Foundation

/// A Swift type that can be read from a column's text-format value.
///
/// Results are requested in text format: it is what every PostgreSQL type supports, and the
/// decoders below parse it without going through `String` where they can.
public protocol PostgresDecodable {
    /// Reads a non-NULL value; returns nil when the text is not a valid `Self` (the caller turns
    /// that into an error naming the column and its type).
    static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Self?
    /// The value SQL NULL decodes to, or nil when NULL is an error (every non-optional type).
    static var nullValue: Self? { get }
}

extension PostgresDecodable {
    public static var nullValue: Self? { nil }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Wrapped?? {
        Wrapped.decode(postgresText: bytes, type: type).map { .some($0) }
    }
    public static var nullValue: Wrapped?? { .some(nil) }
}

extension String: PostgresDecodable {
    /// Any column reads as its text form (numbers, JSON, UUIDs, timestamps alike).
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> String? {
        String(decoding: bytes, as: UTF8.self)
    }
}

extension Int64: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Int64? {
        TextFormat.parseInt64(bytes[...])
    }
}

extension Int: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Int? {
        TextFormat.parseInt64(bytes[...]).flatMap { Int(exactly: $0) }
    }
}

extension Int32: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Int32? {
        TextFormat.parseInt64(bytes[...]).flatMap { Int32(exactly: $0) }
    }
}

extension Int16: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Int16? {
        TextFormat.parseInt64(bytes[...]).flatMap { Int16(exactly: $0) }
    }
}

extension Bool: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Bool? {
        switch String(decoding: bytes, as: UTF8.self) {
        case "t", "true": true
        case "f", "false": false
        default: nil
        }
    }
}

extension Double: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Double? {
        let text = String(decoding: bytes, as: UTF8.self)
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            // Double("inf") and hex floats parse in Swift but are not PostgreSQL output; only
            // accept what looks like a decimal number.
            guard let first = text.utf8.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return nil }
            return Double(text)
        }
    }
}

extension UUID: PostgresDecodable {
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> UUID? {
        UUID(uuidString: String(decoding: bytes, as: UTF8.self))
    }
}

extension Date: PostgresDecodable {
    /// Reads `timestamptz`, `timestamp` (taken as UTC) and `date` (midnight UTC).
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Date? {
        TextFormat.parseTimestamp(bytes).map { Date(timeIntervalSince1970: Double($0) / 1_000_000) }
    }
}

extension Data: PostgresDecodable {
    /// Reads `bytea` in the default hex output format (`\x0a0b…`).
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> Data? {
        TextFormat.parseHexBytea(bytes).map { Data($0) }
    }
}

extension Data: PostgresEncodable {
    public var postgresValue: PostgresValue { .bytea([UInt8](self)) }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Reads a one-dimensional array (`text[]`, `bigint[]`, `uuid[]`, …). Use `[String?]` when
    /// elements may be NULL.
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> [Element]? {
        guard let elements = TextFormat.parseArray(bytes) else { return nil }
        let elementType = TextFormat.elementType(ofArray: type)
        var result: [Element] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            if let element {
                let decoded: Element? = element.withUnsafeBufferPointer { Element.decode(postgresText: $0, type: elementType) }
                guard let decoded else { return nil }
                result.append(decoded)
            } else {
                guard let null = Element.nullValue else { return nil }
                result.append(null)
            }
        }
        return result
    }
}
