import CardCore
import PostgresClient

/// The output formats of every report.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// An aligned table for a terminal (wide characters count two columns).
    case text
    /// One JSON document in the shape fixed by reports.md.
    case json
    /// RFC 4180, a header row, UTF-8 with a byte-order mark.
    case csv
    /// A Markdown table.
    case md
    /// One self-contained, printable HTML file with inline SVG charts.
    case html
}

/// The language of labels, headings and status names. Agency names are printed as registered.
public enum ReportLanguage: String, Sendable, CaseIterable {
    case en
    case zh
}

/// Open applications by age in whole days: `0-7`, `8-15`, `16-30`, `31+`.
public struct AgingBuckets: Sendable, Equatable {
    public var days0to7: Int
    public var days8to15: Int
    public var days16to30: Int
    public var days31plus: Int

    public init(days0to7: Int = 0, days8to15: Int = 0, days16to30: Int = 0, days31plus: Int = 0) {
        self.days0to7 = days0to7
        self.days8to15 = days8to15
        self.days16to30 = days16to30
        self.days31plus = days31plus
    }

    /// The bucket keys as in the JSON, in order.
    public static let keys = ["0-7", "8-15", "16-30", "31+"]

    /// The counts in the order of `keys`.
    public var values: [Int] { [days0to7, days8to15, days16to30, days31plus] }

    /// The bucket an age in whole days falls in (index into `keys`).
    public static func bucket(ofAge days: Int) -> Int {
        switch days {
        case ...7: return 0
        case 8...15: return 1
        case 16...30: return 2
        default: return 3
        }
    }
}

/// Lead time (`issued_at − submitted_at`) in days: `seconds / 86400`, unrounded; nil without values.
public struct LeadTime: Sendable, Equatable {
    public var median: Double?
    public var p90: Double?

    public init(median: Double? = nil, p90: Double? = nil) {
        self.median = median
        self.p90 = p90
    }
}

/// An instant with the UTC offset of the report's time zone at that instant, for printing.
public struct ReportInstant: Sendable, Equatable {
    public var instant: PostgresTimestamp
    /// The report time zone's offset from UTC at `instant`, in seconds.
    public var offsetSeconds: Int

    public init(instant: PostgresTimestamp, offsetSeconds: Int) {
        self.instant = instant
        self.offsetSeconds = offsetSeconds
    }

    /// RFC 3339 in the report's time zone, e.g. `2026-11-01T00:00:00+08:00`.
    public var rfc3339: String {
        Timestamp(microseconds: instant.microsecondsSince1970, offsetSeconds: Int32(offsetSeconds))
            .format(offsetSeconds: Int32(offsetSeconds))
    }

    /// `2026-11-01 00:00` in the report's time zone (for headings), with seconds when not zero.
    public var localMinute: String {
        let text = rfc3339
        let u = Array(text.utf8)
        guard u.count >= 19 else { return text }
        let date = String(decoding: u[0..<10], as: UTF8.self)
        let hhmm = String(decoding: u[11..<16], as: UTF8.self)
        let ss = String(decoding: u[16..<19], as: UTF8.self)
        return date + " " + hhmm + (ss == ":00" ? "" : ss)
    }
}

/// Why a report could not be produced (bad arguments the database cannot check for us).
public struct ReportError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The error is about a value the person typed (a time zone, an instant) that only the
    /// server could judge: the command line reports it as a usage error, like any other bad value.
    public var isBadArgument: Bool
    public init(_ message: String, badArgument: Bool = false) {
        self.message = message
        isBadArgument = badArgument
    }
    public var description: String { message }
}

extension Row {
    func int(_ name: String) throws -> Int { try decode(Int.self, column: name) }
    func optionalDouble(_ name: String) throws -> Double? { try decode(Double?.self, column: name) }
}

extension Connection {
    /// Runs a report's statements in one transaction (one snapshot for the boundaries and the
    /// figures), without JIT compilation and parallel workers: a report reads one period's rows
    /// through indexes, where compiling the plan or starting workers costs more than it saves
    /// (measured: 240 ms → 80 ms for one month over 2 million applications).
    func reportSession<T>(_ body: (Connection) throws -> T) throws -> T {
        try withTransaction { c in
            try c.executeScript("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
            return try body(c)
        }
    }

    /// Runs a report statement, turning an unknown time zone into a message that says what to do.
    func reportQuery(_ sql: String, _ parameters: [PostgresValue], timezone: String) throws -> QueryResult {
        do {
            // The report statements are this module's constants (Reports/SQL, printed in
            // docs/reports.md); their values are `$n` parameters.
            return try query(PostgresQuery(unsafeSQL: sql), parameters)
        } catch let error as PostgresError where error.sqlState == "22023" && error.message.contains("time zone") {
            throw ReportError("unknown time zone \"\(timezone)\": use an IANA name such as Asia/Shanghai, UTC or America/New_York",
                              badArgument: true)
        }
    }
}
