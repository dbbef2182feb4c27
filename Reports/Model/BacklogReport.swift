import CardCore
import PostgresClient

/// What `report backlog` is asked for.
public struct BacklogReportQuery: Sendable, Equatable {
    /// The instant T; nil means now.
    public var asOf: PostgresTimestamp?
    /// The zone `as_of` and `generated_at` are printed in.
    public var timezone: String
    public var agency: String?
    public var slaDays: Int

    public init(asOf: PostgresTimestamp? = nil, timezone: String = "Asia/Shanghai", agency: String? = nil, slaDays: Int = 30) {
        self.asOf = asOf
        self.timezone = timezone
        self.agency = agency
        self.slaDays = slaDays
    }
}

/// An agency's (or the totals') open applications at T.
public struct BacklogFigures: Sendable, Equatable {
    /// Every open application (`on_hold` included).
    public var open = 0
    /// Open applications by their status at T, in the order of `BacklogFigures.statuses`.
    public var byStatus: [ApplicationStatus: Int] = [:]
    public var aging = AgingBuckets()
    /// The oldest open application's age in whole days; nil when nothing is open.
    public var oldestAgeDays: Int?
    /// Open applications older than the SLA (age > SLA days).
    public var slaBreaches = 0

    public init() {}

    /// The open statuses, in lifecycle order.
    public static let statuses: [ApplicationStatus] = [.submitted, .returned, .approved, .produced, .dispatched, .onHold]

    public func count(_ status: ApplicationStatus) -> Int { byStatus[status] ?? 0 }
}

public struct BacklogReport: Sendable, Equatable {
    public var asOf: ReportInstant
    public var timezone: String
    public var slaDays: Int
    public var generatedAt: ReportInstant
    public var agencies: [AgencyRow<BacklogFigures>]
    public var totals: BacklogFigures
}

/// Runs the backlog report in PostgreSQL (`backlogReportSQL`).
public func runBacklogReport(_ query: BacklogReportQuery, on connection: Connection) throws -> BacklogReport {
    try connection.reportSession { connection in
        guard query.slaDays >= 0 else { throw ReportError("--sla-days must be 0 or more") }
        let clock = try connection.reportQuery(instantSQL, [query.asOf.map { $0.postgresValue } ?? .null, .text(query.timezone)],
                                               timezone: query.timezone)
        guard let c = clock.first else { throw ReportError("the report instant could not be computed") }
        let asOf = try c.decode(PostgresTimestamp.self, column: "instant")
        let rows = try connection.reportQuery(
            backlogReportSQL, [asOf.postgresValue, .int(query.slaDays), query.agency.map { .text($0) } ?? .null],
            timezone: query.timezone)
        var agencies: [AgencyRow<BacklogFigures>] = []
        var totals = BacklogFigures()
        for row in rows {
            var f = BacklogFigures()
            f.open = try row.int("open_total")
            for status in BacklogFigures.statuses { f.byStatus[status] = try row.int(status.rawValue) }
            f.aging = AgingBuckets(days0to7: try row.int("age_0_7"), days8to15: try row.int("age_8_15"),
                                   days16to30: try row.int("age_16_30"), days31plus: try row.int("age_31_plus"))
            f.oldestAgeDays = try row.decode(Int?.self, column: "oldest_age_days")
            f.slaBreaches = try row.int("sla_breaches")
            if let code = try row.decode(String?.self, column: "agency_code") {
                agencies.append(AgencyRow(agencyCode: code, agencyName: try row.decode(String.self, column: "agency_name"), figures: f))
            } else {
                totals = f
            }
        }
        if let agency = query.agency, agencies.isEmpty {
            throw ReportError("no agency with code \(agency) is registered (see `cardsync agency list`)", badArgument: true)
        }
        return BacklogReport(
            asOf: ReportInstant(instant: asOf, offsetSeconds: try c.int("instant_offset")),
            timezone: query.timezone, slaDays: query.slaDays,
            generatedAt: ReportInstant(instant: try c.decode(PostgresTimestamp.self, column: "now"), offsetSeconds: try c.int("now_offset")),
            agencies: agencies, totals: totals)
    }
}

/// Reads a `--as-of` value: RFC 3339 with an offset, or a local date or date-time
/// (`2026-11-01`, `2026-11-01T08:30`) taken in the report's time zone.
public func parseReportInstant(_ text: String, timezone: String, on connection: Connection) throws -> PostgresTimestamp {
    if let t = Timestamp(rfc3339: text) { return PostgresTimestamp(microsecondsSince1970: t.microseconds) }
    let looksLocal = text.utf8.count >= 10 && CivilDate(iso: text.prefix(10)) != nil
        && text.utf8.allSatisfy { "0123456789-:T .".utf8.contains($0) }
    guard looksLocal else {
        throw ReportError("cannot read \"\(text)\" as a time: use 2026-10-31T18:00:00+08:00, 2026-11-01T08:30 or 2026-11-01",
                          badArgument: true)
    }
    do {
        let rows = try connection.reportQuery(localInstantSQL, [.text(text), .text(timezone)], timezone: timezone)
        return try rows[0].decode(PostgresTimestamp.self, column: "instant")
    } catch let error as PostgresError where error.sqlStateClass == "22" {
        throw ReportError("cannot read \"\(text)\" as a time: use 2026-10-31T18:00:00+08:00, 2026-11-01T08:30 or 2026-11-01",
                          badArgument: true)
    }
}
