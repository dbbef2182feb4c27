/// The one error type thrown by `PostgresClient`.
///
/// Server errors carry the fields PostgreSQL reports (SQLSTATE, message, detail, hint, constraint,
/// table, column, position), so callers can react to a class of failure (`sqlStateClass == "23"`)
/// instead of parsing messages.
///
/// Privacy: `description` is what ends up in logs, so it never contains parameter values, the
/// connection string or a password. It leaves out `detail` and `context`, because PostgreSQL puts
/// row contents there (`Key (national_id)=(110101…) already exists.`, `COPY cards, line 3: "…"`),
/// and for data exceptions (SQLSTATE class 22), whose messages quote the rejected input, it masks
/// quoted fragments. The unredacted fields stay available as properties for code that needs them.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// Where the failure came from.
    public enum Kind: String, Sendable {
        /// Connecting failed, or the connection broke.
        case connection
        /// The server rejected a statement; `sqlState` is set.
        case server
        /// This library or libpq refused to go on (misuse, unexpected protocol state).
        case client
        /// A value came back but could not be turned into the requested Swift type.
        case decoding
    }

    public var kind: Kind
    /// The five-character SQLSTATE code, e.g. `23505`; nil when the server did not send one.
    public var sqlState: String?
    /// The primary, human-readable message.
    public var message: String
    /// Secondary detail from the server. May contain data values: not part of `description`.
    public var detail: String?
    public var hint: String?
    /// Where the error happened (PL/pgSQL call stack, COPY line). May contain row data.
    public var context: String?
    public var severity: String?
    public var schema: String?
    public var table: String?
    public var column: String?
    public var dataType: String?
    public var constraint: String?
    /// 1-based character offset into the statement text, when the server reported one.
    public var position: Int?
    /// The SQL text of the statement that failed (its parameters are never part of it). Left out
    /// of `description`, which names the failure; shown by `detailedDescription`.
    public var statement: String?

    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        context: String? = nil, severity: String? = nil, schema: String? = nil, table: String? = nil,
        column: String? = nil, dataType: String? = nil, constraint: String? = nil, position: Int? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.context = context
        self.severity = severity
        self.schema = schema
        self.table = table
        self.column = column
        self.dataType = dataType
        self.constraint = constraint
        self.position = position
    }

    /// The first two characters of the SQLSTATE: the error class (`23` integrity, `40` transaction
    /// rollback, `42` syntax/access, `08` connection).
    public var sqlStateClass: String? { sqlState.map { String($0.prefix(2)) } }

    /// `23505`: a row with the same key already exists.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// `23503`.
    public var isForeignKeyViolation: Bool { sqlState == "23503" }
    /// `23502`.
    public var isNotNullViolation: Bool { sqlState == "23502" }
    /// `23514`.
    public var isCheckViolation: Bool { sqlState == "23514" }
    /// `40001` or `40P01`: the transaction may succeed if retried from the start.
    public var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }

    public var description: String {
        var text = "PostgreSQL \(kind.rawValue) error"
        if let sqlState { text += " \(sqlState)" }
        text += ": "
        text += sqlStateClass == "22" ? Self.maskingQuotedFragments(message) : message
        var where_: [String] = []
        if let schema { where_.append("schema \(schema)") }
        if let table { where_.append("table \(table)") }
        if let column, kind != .decoding { where_.append("column \(column)") }  // Decoding messages name it already.
        if let constraint { where_.append("constraint \(constraint)") }
        if let position { where_.append("position \(position)") }
        if !where_.isEmpty { text += " (" + where_.joined(separator: ", ") + ")" }
        if let hint { text += " Hint: \(hint)" }
        return text
    }

    /// Everything the server said, including `detail` and `context`. These can contain row data
    /// (personal data), so use this for local debugging, not for logs that leave the machine.
    public var detailedDescription: String {
        var text = "PostgreSQL \(kind.rawValue) error"
        if let sqlState { text += " \(sqlState)" }
        text += ": \(message)"
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        if let context { text += "\nCONTEXT: \(context)" }
        if let statement { text += "\nSTATEMENT: \(statement)" }
        return text
    }

    /// Replaces the inside of every "…" quoted fragment, which is where PostgreSQL quotes the
    /// rejected input in data-exception messages (`invalid input syntax for type uuid: "…"`).
    static func maskingQuotedFragments(_ message: String) -> String {
        var result = ""
        var inQuote = false
        for character in message {
            if character == "\"" {
                if inQuote { result += "…" }
                inQuote.toggle()
                result.append(character)
            } else if !inQuote {
                result.append(character)
            }
        }
        return result
    }

    static func client(_ message: String) -> PostgresError { PostgresError(kind: .client, message: message) }
}
