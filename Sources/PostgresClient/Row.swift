/// One row of a `QueryResult`.
///
/// Values are decoded on demand into the type the caller asks for; asking for an optional type
/// (`String?.self`) is how a caller says NULL is allowed.
public struct Row: Sendable {
    let handle: ResultHandle
    /// The row's position in its result.
    public let index: Int

    public var columns: [Column] { handle.columns }

    /// Decodes the column with this exact name.
    ///
    /// Throws a `.decoding` error naming the column when it does not exist, when it is NULL and
    /// `T` is not optional, or when its text cannot be read as `T` (the message names the
    /// column's PostgreSQL type, never the value).
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column name: String) throws -> T {
        guard let column = handle.columnIndex[name] else {
            let available = handle.columns.map(\.name).joined(separator: ", ")
            throw PostgresError(kind: .decoding, message: "no column named \"\(name)\" in the result (columns: \(available))")
        }
        return try decode(type, at: column)
    }

    /// Decodes the column at a 0-based position.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at column: Int) throws -> T {
        guard column >= 0 && column < handle.columns.count else {
            throw PostgresError(kind: .decoding, message: "column index \(column) is out of range; the result has \(handle.columns.count) columns")
        }
        let info = handle.columns[column]
        return try handle.withCell(row: index, column: column) { bytes in
            guard let bytes else {
                guard let null = T.nullValue else {
                    throw PostgresError(kind: .decoding, message: "column \"\(info.name)\" is NULL, but \(T.self) is not optional; decode \(T.self)? instead", column: info.name)
                }
                return null
            }
            guard let value = T.decode(postgresText: bytes, type: info.type) else {
                throw PostgresError(kind: .decoding, message: "column \"\(info.name)\" of type \(info.type) cannot be decoded as \(T.self)", column: info.name, dataType: info.type.description)
            }
            return value
        }
    }

    /// Whether the named column is SQL NULL.
    public func isNull(column name: String) throws -> Bool {
        guard let column = handle.columnIndex[name] else {
            throw PostgresError(kind: .decoding, message: "no column named \"\(name)\" in the result")
        }
        return handle.withCell(row: index, column: column) { $0 == nil }
    }
}
