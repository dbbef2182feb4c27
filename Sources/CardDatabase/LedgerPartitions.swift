import PostgresClient

/// The ledger's monthly partitions (migration 7), for `cardsync db partitions`: which exist and
/// how many events each holds, creating months ahead, and detaching an old month for archiving.
///
/// The SQL lives in the migration's functions (`ensure_ledger_partitions`,
/// `ledger_month_blockers`, `detach_ledger_month`); months travel as parameters.
public struct LedgerPartitions {
    public struct Partition: Sendable, Equatable {
        /// The table, e.g. `ledger_2026_12`, or `ledger_default`.
        public var name: String
        /// `YYYY-MM` (UTC), nil for the DEFAULT partition.
        public var month: String?
        public var events: Int64

        public init(name: String, month: String?, events: Int64) {
            self.name = name
            self.month = month
            self.events = events
        }
    }

    public struct Archived: Sendable, Equatable {
        public var month: String
        public var table: String
        public var events: Int64

        public init(month: String, table: String, events: Int64) {
            self.month = month
            self.table = table
            self.events = events
        }
    }

    public struct Blocker: Sendable, Equatable {
        public var reason: String
        public var count: Int64
    }

    public enum Failure: Error, CustomStringConvertible {
        case badMonth(String)

        public var description: String {
            switch self {
            case .badMonth(let text): return "\(text) is not a month: write it as YYYY-MM (for example 2026-01)"
            }
        }
    }

    let connection: Connection

    public init(connection: Connection) {
        self.connection = connection
    }

    /// The attached partitions in month order (the DEFAULT partition last), with exact counts.
    public func list() throws -> [Partition] {
        let rows = try connection.query("""
            SELECT c.relname AS name, c.relispartition AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
                   coalesce(n.events, 0)::int8 AS events
            FROM pg_catalog.pg_inherits i
            JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
            LEFT JOIN (SELECT tableoid, count(*) AS events FROM cardsync.ledger GROUP BY tableoid) n ON n.tableoid = c.oid
            WHERE i.inhparent = 'cardsync.ledger'::regclass
            ORDER BY is_default, c.relname
            """)
        return try rows.map { row in
            let name = try row.decode(String.self, column: "name")
            let isDefault = try row.decode(Bool.self, column: "is_default")
            return Partition(name: name, month: isDefault ? nil : Self.month(ofTable: name),
                             events: try row.decode(Int64.self, column: "events"))
        }
    }

    /// Months detached for archiving, oldest first.
    public func archived() throws -> [Archived] {
        try connection.query("""
            SELECT to_char(month, 'YYYY-MM') AS month, table_name, events FROM cardsync.ledger_archive ORDER BY month
            """).map { row in
            Archived(month: try row.decode(String.self, column: "month"), table: try row.decode(String.self, column: "table_name"),
                     events: try row.decode(Int64.self, column: "events"))
        }
    }

    /// Creates the missing partitions of this month (or `from`, a `YYYY-MM`) and the `monthsAhead`
    /// months after it; returns how many it created.
    @discardableResult
    public func create(from: String? = nil, monthsAhead: Int) throws -> Int {
        let first = try from.map(Self.firstDay(of:))
        let rows = try connection.query("""
            WITH f AS (SELECT coalesce($1::date::timestamp, date_trunc('month', now() AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AS first)
            SELECT cardsync.ensure_ledger_partitions(f.first, f.first + make_interval(months => $2)) AS made FROM f
            """, [first.map(PostgresValue.text) ?? .null, .int32(Int32(clamping: monthsAhead))])
        return Int(try rows.first?.decode(Int32.self, column: "made") ?? 0)
    }

    /// What keeps `month` (`YYYY-MM`) from being detached; empty: it may go.
    public func blockers(month: String) throws -> [Blocker] {
        try connection.query("SELECT reason, count FROM cardsync.ledger_month_blockers($1::date)",
                             [.text(try Self.firstDay(of: month))]).map { row in
            Blocker(reason: try row.decode(String.self, column: "reason"), count: try row.decode(Int64.self, column: "count"))
        }
    }

    /// Detaches `month` into the schema `cardsync_archive`; returns the archived table's name.
    /// Throws (and changes nothing) when something blocks it.
    public func detach(month: String) throws -> String {
        let rows = try connection.query("SELECT cardsync.detach_ledger_month($1::date) AS archived",
                                        [.text(try Self.firstDay(of: month))])
        return try rows.first!.decode(String.self, column: "archived")
    }

    /// `2026-01` → `2026-01-01`; refuses anything else.
    static func firstDay(of month: String) throws -> String {
        let parts = month.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let m = Int(parts[1]), (1...12).contains(m) else { throw Failure.badMonth(month) }
        return "\(month)-01"
    }

    /// `ledger_2026_01` → `2026-01`.
    static func month(ofTable name: String) -> String? {
        guard name.hasPrefix("ledger_") else { return nil }
        let rest = name.dropFirst("ledger_".count)
        let parts = rest.split(separator: "_")
        guard parts.count == 2 else { return nil }
        return "\(parts[0])-\(parts[1])"
    }
}
