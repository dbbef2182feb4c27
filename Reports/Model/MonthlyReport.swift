import CardCore
import PostgresClient

/// What `report monthly` is asked for.
public struct MonthlyReportQuery: Sendable, Equatable {
    public var month: YearMonth
    /// IANA time zone the month's boundaries are local to.
    public var timezone: String
    /// Only this agency's row (the totals are then that agency's figures).
    public var agency: String?
    public var slaDays: Int

    public init(month: YearMonth, timezone: String = "Asia/Shanghai", agency: String? = nil, slaDays: Int = 30) {
        self.month = month
        self.timezone = timezone
        self.agency = agency
        self.slaDays = slaDays
    }
}

/// One row of the monthly report (an agency's, or the totals), named as in reports.md.
public struct MonthlyFigures: Sendable, Equatable {
    public var received = 0
    public var duplicates = 0
    public var approved = 0
    public var rejected = 0
    public var returned = 0
    public var withdrawn = 0
    public var cardsProduced = 0
    public var cardsIssued = 0
    public var backlogStart = 0
    public var backlogEnd = 0
    public var netFlow = 0
    public var leadTimeDays = LeadTime()
    public var agingEnd = AgingBuckets()
    public var slaBreaches = 0
    public var conflictsOpened = 0
    public var conflictsResolved = 0

    public init() {}
}

/// An agency's row: its code and name as registered, and its figures.
public struct AgencyRow<Figures: Sendable & Equatable>: Sendable, Equatable {
    public var agencyCode: String
    public var agencyName: String
    public var figures: Figures
}

/// The monthly issuance report: every registered agency (zeros included), then pooled totals.
public struct MonthlyReport: Sendable, Equatable {
    public var month: YearMonth
    public var timezone: String
    public var slaDays: Int
    /// Local midnight of the month's first day.
    public var periodStart: ReportInstant
    /// Local midnight of the next month's first day (the month is `[periodStart, periodEnd)`).
    public var periodEnd: ReportInstant
    public var generatedAt: ReportInstant
    public var agencies: [AgencyRow<MonthlyFigures>]
    public var totals: MonthlyFigures
}

/// Runs the monthly report in PostgreSQL (`monthlyReportSQL`): two statements, one for the
/// month's boundaries in the time zone and one for every figure.
public func runMonthlyReport(_ query: MonthlyReportQuery, on connection: Connection) throws -> MonthlyReport {
    try connection.reportSession { connection in
        guard query.slaDays >= 0 else { throw ReportError("--sla-days must be 0 or more") }
        let bounds = try connection.reportQuery(
            monthBoundsSQL, [.int(query.month.year), .int(query.month.month), .text(query.timezone)],
            timezone: query.timezone)
        guard let b = bounds.first else { throw ReportError("the month's boundaries could not be computed") }
        let start = try b.decode(PostgresTimestamp.self, column: "month_start")
        let end = try b.decode(PostgresTimestamp.self, column: "month_end")
        let rows = try connection.reportQuery(
            monthlyReportSQL,
            [start.postgresValue, end.postgresValue, .int(query.slaDays), query.agency.map { .text($0) } ?? .null],
            timezone: query.timezone)
        var agencies: [AgencyRow<MonthlyFigures>] = []
        var totals = MonthlyFigures()
        for row in rows {
            let figures = try MonthlyFigures(row: row)
            if let code = try row.decode(String?.self, column: "agency_code") {
                agencies.append(AgencyRow(agencyCode: code, agencyName: try row.decode(String.self, column: "agency_name"), figures: figures))
            } else {
                totals = figures
            }
        }
        if let agency = query.agency, agencies.isEmpty {
            throw ReportError("no agency with code \(agency) is registered (see `cardsync agency list`)", badArgument: true)
        }
        return MonthlyReport(
            month: query.month, timezone: query.timezone, slaDays: query.slaDays,
            periodStart: ReportInstant(instant: start, offsetSeconds: try b.int("month_start_offset")),
            periodEnd: ReportInstant(instant: end, offsetSeconds: try b.int("month_end_offset")),
            generatedAt: ReportInstant(instant: try b.decode(PostgresTimestamp.self, column: "now"), offsetSeconds: try b.int("now_offset")),
            agencies: agencies, totals: totals)
    }
}

extension MonthlyFigures {
    init(row: Row) throws {
        self.init()
        received = try row.int("received")
        duplicates = try row.int("duplicates")
        approved = try row.int("approved")
        rejected = try row.int("rejected")
        returned = try row.int("returned")
        withdrawn = try row.int("withdrawn")
        cardsProduced = try row.int("cards_produced")
        cardsIssued = try row.int("cards_issued")
        backlogStart = try row.int("backlog_start")
        backlogEnd = try row.int("backlog_end")
        netFlow = try row.int("net_flow")
        leadTimeDays = LeadTime(median: try row.optionalDouble("lead_median_days"), p90: try row.optionalDouble("lead_p90_days"))
        agingEnd = AgingBuckets(days0to7: try row.int("age_0_7"), days8to15: try row.int("age_8_15"),
                                days16to30: try row.int("age_16_30"), days31plus: try row.int("age_31_plus"))
        slaBreaches = try row.int("sla_breaches")
        conflictsOpened = try row.int("conflicts_opened")
        conflictsResolved = try row.int("conflicts_resolved")
    }
}
