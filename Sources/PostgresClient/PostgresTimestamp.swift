/// A `timestamptz` as PostgreSQL stores it: whole microseconds since 1970-01-01 00:00:00 UTC.
///
/// Prefer it over `Date` when values must round-trip exactly (Date is a Double and can be off by
/// a microsecond far from 2001).
public struct PostgresTimestamp: Hashable, Comparable, Sendable, PostgresDecodable, PostgresEncodable {
    public var microsecondsSince1970: Int64

    public init(microsecondsSince1970: Int64) { self.microsecondsSince1970 = microsecondsSince1970 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microsecondsSince1970 < rhs.microsecondsSince1970 }

    public var postgresValue: PostgresValue { .timestamp(microsecondsSince1970: microsecondsSince1970) }

    /// Reads `timestamptz`, `timestamp` (taken as UTC) and `date` (midnight UTC) text output in
    /// the ISO DateStyle, which `Connection` sets for every session.
    public static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> PostgresTimestamp? {
        TextFormat.parseTimestamp(bytes).map(PostgresTimestamp.init(microsecondsSince1970:))
    }
}
