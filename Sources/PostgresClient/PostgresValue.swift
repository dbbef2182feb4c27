import Foundation

/// A statement parameter: a typed value, or SQL NULL.
///
/// Every case maps to one PostgreSQL type, sent with its OID, so `$1` is never ambiguous.
/// Values only ever travel as bind parameters (`PQexecParams`), never spliced into SQL text.
public enum PostgresValue: Sendable, Hashable {
    /// SQL NULL. Sent without a type so the server infers it from the context.
    case null
    /// `text`.
    case text(String)
    /// `smallint`.
    case int16(Int16)
    /// `integer`.
    case int32(Int32)
    /// `bigint`.
    case int64(Int64)
    /// `boolean`.
    case bool(Bool)
    /// `double precision`, including NaN and ±infinity.
    case double(Double)
    /// `timestamptz` from microseconds since 1970-01-01 00:00:00 UTC: PostgreSQL's own
    /// resolution, so nothing is lost to floating point (unlike `Date`).
    case timestamp(microsecondsSince1970: Int64)
    /// `uuid`.
    case uuid(UUID)
    /// `jsonb` from JSON text, which must already be valid JSON: the server checks it.
    case json(String)
    /// `bytea`.
    case bytea([UInt8])
    /// `text[]`.
    case textArray([String])
    /// `uuid[]`.
    case uuidArray([UUID])
    /// `bigint[]`.
    case int64Array([Int64])

    /// `bigint` from a platform `Int`.
    public static func int(_ value: Int) -> PostgresValue { .int64(Int64(value)) }

    /// `timestamptz` from a `Date`, rounded to whole microseconds.
    public static func date(_ date: Date) -> PostgresValue {
        .timestamp(microsecondsSince1970: Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
    }

    /// Wraps any encodable value; `nil` becomes SQL NULL. Handy for optional columns.
    public init<Value: PostgresEncodable>(_ value: Value?) {
        self = value?.postgresValue ?? .null
    }

    /// The OID the parameter is declared with.
    public var type: PostgresType {
        switch self {
        case .null: .unspecified
        case .text: .text
        case .int16: .int2
        case .int32: .int4
        case .int64: .int8
        case .bool: .bool
        case .double: .float8
        case .timestamp: .timestamptz
        case .uuid: .uuid
        case .json: .jsonb
        case .bytea: .bytea
        case .textArray: .textArray
        case .uuidArray: .uuidArray
        case .int64Array: .int8Array
        }
    }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// A Swift type that has a natural PostgreSQL parameter form.
public protocol PostgresEncodable {
    var postgresValue: PostgresValue { get }
}

extension String: PostgresEncodable { public var postgresValue: PostgresValue { .text(self) } }
extension Int: PostgresEncodable { public var postgresValue: PostgresValue { .int64(Int64(self)) } }
extension Int16: PostgresEncodable { public var postgresValue: PostgresValue { .int16(self) } }
extension Int32: PostgresEncodable { public var postgresValue: PostgresValue { .int32(self) } }
extension Int64: PostgresEncodable { public var postgresValue: PostgresValue { .int64(self) } }
extension Bool: PostgresEncodable { public var postgresValue: PostgresValue { .bool(self) } }
extension Double: PostgresEncodable { public var postgresValue: PostgresValue { .double(self) } }
extension UUID: PostgresEncodable { public var postgresValue: PostgresValue { .uuid(self) } }
extension Date: PostgresEncodable { public var postgresValue: PostgresValue { .date(self) } }
extension PostgresValue: PostgresEncodable { public var postgresValue: PostgresValue { self } }
