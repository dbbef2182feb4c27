import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

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
            let whole = String(cString: PQresultErrorMessage(result)).joinedLines()
            message = whole.isEmpty ? connection.map(connectionErrorMessage) : whole
        }
        let sqlState = field(.sqlState)
        let kind: Kind
        if let sqlState {
            kind = sqlState.hasPrefix("08") ? .connection : .server
        } else if let connection, connectionIsBroken(connection) {
            kind = .connection
            // Which session broke: a sync holds two, a merge service three.
            message = Self.lostConnection(connection, message ?? "unknown libpq error")
        } else {
            kind = .client
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

extension PostgresError {
    /// "the connection to host … port … db … user … was lost: <libpq's reason>" (no password:
    /// the target is rebuilt from what libpq resolved).
    static func lostConnection(_ connection: OpaquePointer, _ reason: String) -> String {
        "the connection to \(ConnectionTarget.describe(connection)) was lost: \(reason)"
    }
}

/// Whether the session is gone. libpq 15 reports a server that went away ("server closed the
/// connection unexpectedly": a crash, a cut network) with the connection still CONNECTION_OK,
/// and an idle connection whose server crashed looks fine until used. Reading what waits on the
/// socket tells at once: a crashed server's last notice, then end-of-file. It never blocks
/// (libpq's socket is non-blocking), and libpq keeps what it reads for the next result.
func connectionIsBroken(_ connection: OpaquePointer) -> Bool {
    if PQstatus(connection) == CONNECTION_BAD || PQsocket(connection) < 0 { return true }
    // A few rounds at most: a busy LISTEN session may keep receiving notifications.
    for _ in 0..<8 {
        if PQconsumeInput(connection) == 0 { return true }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, 0) <= 0 { return false }  // nothing more waiting: alive
    }
    return false
}

/// libpq's last error message on a connection, without the trailing newline it always adds.
/// Multi-line messages ("…failed: Connection refused\n\tIs the server running…") are joined
/// into one line so they read well in logs.
func connectionErrorMessage(_ connection: OpaquePointer) -> String {
    guard let pointer = PQerrorMessage(connection) else { return "unknown libpq error" }
    let text = String(cString: pointer).joinedLines()
    return text.isEmpty ? "unknown libpq error" : text
}

extension String {
    /// The lines of a libpq message joined into one, each trimmed.
    func joinedLines() -> String {
        split(whereSeparator: \.isNewline)
            .map { String($0).trimmingWhitespace() }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }

    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        return String(slice)
    }
}
