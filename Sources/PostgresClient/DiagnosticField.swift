import CLibPQ

/// The `PG_DIAG_*` field codes of libpq. They are character-literal macros, which Swift cannot
/// import, so they are spelled here as their ASCII codes.
enum DiagnosticField: Character {
    case severity = "V"  // PG_DIAG_SEVERITY_NONLOCALIZED: stable across lc_messages.
    case sqlState = "C"
    case messagePrimary = "M"
    case messageDetail = "D"
    case messageHint = "H"
    case statementPosition = "P"
    case context = "W"
    case schemaName = "s"
    case tableName = "t"
    case columnName = "c"
    case dataTypeName = "d"
    case constraintName = "n"

    var code: Int32 { Int32(rawValue.asciiValue!) }
}

extension PostgresError {
    /// Builds a server error from a failed `PGresult`, reading each field separately so callers
    /// get structured data rather than one formatted string.
    init(result: OpaquePointer, connection: OpaquePointer?) {
        func field(_ name: DiagnosticField) -> String? {
            guard let pointer = PQresultErrorField(result, name.code) else { return nil }
            return String(cString: pointer)
        }
        var message = field(.messagePrimary)
        if message == nil {
            // libpq-generated errors (e.g. a lost connection) have no fields, only the message.
            let whole = String(cString: PQresultErrorMessage(result)).trimmingWhitespace()
            message = whole.isEmpty ? connection.map(connectionErrorMessage) : whole
        }
        let sqlState = field(.sqlState)
        let kind: Kind
        if let sqlState {
            kind = sqlState.hasPrefix("08") ? .connection : .server
        } else {
            kind = connection.map { PQstatus($0) == CONNECTION_BAD } == true ? .connection : .client
        }
        self.init(
            kind: kind,
            message: message ?? "unknown error",
            sqlState: sqlState,
            detail: field(.messageDetail),
            hint: field(.messageHint),
            context: field(.context),
            severity: field(.severity),
            schema: field(.schemaName),
            table: field(.tableName),
            column: field(.columnName),
            dataType: field(.dataTypeName),
            constraint: field(.constraintName),
            position: field(.statementPosition).flatMap { Int($0) }
        )
    }
}

/// libpq's last error message on a connection, without the trailing newline it always adds.
/// Multi-line messages ("…failed: Connection refused\n\tIs the server running…") are joined
/// into one line so they read well in logs.
func connectionErrorMessage(_ connection: OpaquePointer) -> String {
    guard let pointer = PQerrorMessage(connection) else { return "unknown libpq error" }
    let text = String(cString: pointer)
        .split(whereSeparator: \.isNewline)
        .map { String($0).trimmingWhitespace() }
        .filter { !$0.isEmpty }
        .joined(separator: " ")
    return text.isEmpty ? "unknown libpq error" : text
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        return String(slice)
    }
}
