import CLibPQ
import Logging

/// One PostgreSQL session over libpq.
///
/// Not safe for concurrent use: libpq connections are single-threaded. So it is not `Sendable`,
/// and the compiler refuses code that shares one between threads: each thread opens its own, or
/// a connection is handed over whole (`sending`) to the one thread that uses it from then on.
public final class Connection {
    let handle: OpaquePointer
    let logger: Logger?
    private let notices: NoticeSink
    /// Where this connection goes, without the password: `host /tmp/x port 5432 db cardsync user postgres`.
    public let target: String
    /// Nesting depth of `withTransaction` savepoints.
    var savepointDepth = 0

    /// Connects using libpq's own conninfo parsing, so URIs (`postgresql://…`), `key=value`
    /// strings, `PG*` environment variables, `sslmode`, `application_name` and service files all
    /// behave exactly as with `psql`.
    ///
    /// Throws a `.connection` error naming the target (host or socket directory, port, database,
    /// user) and libpq's reason; the conninfo string itself is never included, because it may
    /// carry a password.
    ///
    /// Every session gets `client_encoding=UTF8` (Swift strings are UTF-8) and `DateStyle=ISO`
    /// (what the timestamp decoders read).
    public init(conninfo: String, logger: Logger? = nil) throws {
        guard let handle = PQconnectdb(conninfo) else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let target = ConnectionTarget.describe(handle)
            let reason = ConnectionTarget.redact(connectionErrorMessage(handle), conninfo: conninfo)
            PQfinish(handle)
            throw PostgresError(kind: .connection, message: "could not connect to \(target): \(reason)")
        }
        self.handle = handle
        self.logger = logger
        self.target = ConnectionTarget.describe(handle)
        self.notices = NoticeSink(logger: logger)
        notices.install(on: handle)
        // From here on deinit runs PQfinish if anything throws.
        try executeScript("SET client_encoding TO 'UTF8'; SET DateStyle TO 'ISO'")
    }

    deinit {
        PQfinish(handle)
    }

    /// Runs one statement and returns its rows. Values are bind parameters with explicit types,
    /// never spliced into the SQL text: interpolated into the query (`\(.text(code))`), or as
    /// `$1`, `$2`, … in the text with `parameters` (one or the other, not both).
    @discardableResult
    public func query(_ query: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> QueryResult {
        QueryResult(handle: try run(query.sql, Self.binds(query, parameters)))
    }

    /// Runs one statement for its effect and returns the affected-row count from the command
    /// tag (0 for commands that report none, such as DDL). Values as for `query`.
    @discardableResult
    public func execute(_ query: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
        try run(query.sql, Self.binds(query, parameters)).affectedRows
    }

    /// The statement's values: interpolated, or given as `parameters`, never both (their `$n`
    /// would collide).
    static func binds(_ query: PostgresQuery, _ parameters: [PostgresValue]) -> [PostgresValue] {
        precondition(query.binds.isEmpty || parameters.isEmpty,
                     "bind values by interpolation or as $n with parameters, not both")
        return query.binds.isEmpty ? parameters : query.binds
    }

    /// Runs several `;`-separated statements as they are, without parameters: migrations and
    /// setup only, whose text is the program's own. Never put a value in it.
    /// Outside an explicit transaction PostgreSQL runs the whole string as one implicit
    /// transaction, so a failing statement undoes the ones before it.
    public func executeScript(_ sql: String) throws {
        let result = sql.withCString { PQexec(handle, $0) }
        _ = try checked(result, sql: sql)
    }

    /// Quotes an identifier (schema, table name) with `PQescapeIdentifier`, for the rare places
    /// where a name, never a value, has to be part of the SQL text.
    public func escapeIdentifier(_ identifier: String) throws -> String {
        let utf8 = Array(identifier.utf8)
        let escaped = utf8.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQescapeIdentifier(handle, $0.baseAddress, $0.count) }
        }
        guard let escaped else {
            throw PostgresError(kind: .client, message: "could not quote identifier: \(connectionErrorMessage(handle))")
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// The server's version as an integer, e.g. 150008 for 15.8.
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// Where libpq connected, as it resolved it (for building a connection string for someone
    /// else, e.g. an agency's): host name, address or socket directory; port; database; user.
    public var resolvedHost: String { PQhost(handle).map { String(cString: $0) } ?? "" }
    public var resolvedPort: String { PQport(handle).map { String(cString: $0) } ?? "" }
    public var resolvedDatabase: String { PQdb(handle).map { String(cString: $0) } ?? "" }
    public var resolvedUser: String { PQuser(handle).map { String(cString: $0) } ?? "" }

    /// Whether the session is usable: libpq has not seen it break, and its socket still reads
    /// (a server that crashed or a cut network shows there before libpq marks the connection bad).
    /// Call it between statements, not during one.
    public var isHealthy: Bool { !connectionIsBroken(handle) }

    // MARK: - Internals

    func run(_ sql: String, _ parameters: [PostgresValue]) throws -> ResultHandle {
        let encoding = try ParameterEncoding(parameters)
        let result = sql.withCString { sqlText in
            encoding.withCArrays { types, values, lengths, formats in
                PQexecParams(handle, sqlText, Int32(parameters.count), types, values, lengths, formats, 0)
            }
        }
        return try checked(result, sql: sql)
    }

    /// Wraps a successful result or turns a failed one into a `PostgresError`, clearing it.
    func checked(_ result: OpaquePointer?, sql: String) throws -> ResultHandle {
        guard let result else {
            let message = connectionErrorMessage(handle)
            guard connectionIsBroken(handle) else { throw PostgresError(kind: .client, message: message) }
            throw PostgresError(kind: .connection, message: PostgresError.lostConnection(handle, message))
        }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return ResultHandle(result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            PQclear(result)
            abandonCopy(reason: "COPY must go through copyIn or copyOut")
            throw PostgresError.client("COPY statements must use copyIn(_:_:) or copyOut(_:_:), not query/execute")
        default:
            var error = PostgresError(result: result, connection: handle)
            error.statement = sql
            PQclear(result)
            logger?.debug("statement failed", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Leaves a COPY state that was entered by mistake, so the connection stays usable.
    func abandonCopy(reason: String) {
        _ = reason.withCString { PQputCopyEnd(handle, $0) }
        drainResults()
    }

    /// Reads results until libpq reports none, returning the first error. libpq requires this
    /// after a COPY and after PQsendQuery; stopping early leaves the connection busy. A COPY state
    /// met on the way is ended (IN: cancelled; OUT: read and discarded), because libpq would
    /// otherwise hand back the same COPY result forever.
    @discardableResult
    func drainResults() -> PostgresError? {
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if firstError == nil, status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE {
                firstError = PostgresError(result: result, connection: handle)
            }
            PQclear(result)
            if status == PGRES_COPY_IN || status == PGRES_COPY_BOTH {
                _ = PQputCopyEnd(handle, "abandoned by client")
            }
            if status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                var buffer: UnsafeMutablePointer<CChar>?
                while PQgetCopyData(handle, &buffer, 0) > 0 { PQfreemem(buffer) }
            }
            if PQstatus(handle) == CONNECTION_BAD { break }
        }
        return firstError
    }
}
