/// One SQL statement and its bind parameters, written as a string literal in which every value
/// is a bind parameter:
///
/// ```swift
/// try connection.query("SELECT name FROM cardsync.agencies WHERE code = \(.text(code))")
/// ```
///
/// Each `\(value)` (a `PostgresValue`) becomes the next `$n` and its value travels apart from the
/// SQL text, so no value can ever change the statement. SQL text that is not a value (a column
/// list kept in a constant, an identifier quoted by `escapeIdentifier`) goes in with
/// `\(unescaped: text)`, a spelling a reviewer sees; and a `String` interpolated bare does not
/// compile, so whoever writes one must say which of the two it is. A statement built at run time
/// is `PostgresQuery(unsafeSQL:)`, just as visibly.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement's text, with `$1`, `$2`, … where the values go.
    public private(set) var sql: String
    /// The values of `$1`, `$2`, …, in order.
    public private(set) var binds: [PostgresValue]

    /// A statement whose text is given whole: it must not contain any value (bind those as
    /// `$n` through `binds`).
    public init(unsafeSQL sql: String, binds: [PostgresValue] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// The SQL text only: values are never part of a description.
    public var description: String { sql }

    /// Builds `sql` and `binds` as the literal is read.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + 3 * interpolationCount)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A value: bound as the next `$n`.
        public mutating func appendInterpolation(_ value: PostgresValue) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        /// SQL text that is not a value, spliced as it is.
        public mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}
