import CardCore
import PostgresClient

/// The interval of the throughput report. Weeks start on Monday.
public enum ThroughputInterval: String, Sendable, CaseIterable {
    case day
    case week
    case month
}

/// What `report throughput` is asked for.
public struct ThroughputReportQuery: Sendable, Equatable {
    /// First local date; the first interval is the one containing it, clipped to start here.
    public var from: CivilDate
    /// Last local date, inclusive; the last interval is the one containing it, clipped to end here.
    public var to: CivilDate
    public var interval: ThroughputInterval
    public var timezone: String
    public var agency: String?

    public init(from: CivilDate, to: CivilDate, interval: ThroughputInterval = .week,
                timezone: String = "Asia/Shanghai", agency: String? = nil) {
        self.from = from
        self.to = to
        self.interval = interval
        self.timezone = timezone
        self.agency = agency
    }

    /// At most this many intervals per report (a day-by-day report over 10 years is a mistake).
    public static let maximumIntervals = 1000
}

/// One interval's figures for one agency (or the totals).
public struct ThroughputFigures: Sendable, Equatable {
    /// First local date of the interval (never before the report's `from`).
    public var start: CivilDate
    /// First local date after the interval (never after the day after the report's `to`).
    public var end: CivilDate
    /// The interval was clipped to the requested period: it covers fewer days than a whole
    /// week or month, so its figures are not comparable with its neighbours' as they stand.
    public var partial = false
    public var received = 0
    public var closed = 0
    public var cardsIssued = 0
    /// Open at the interval's end instant (local midnight of `end`).
    public var backlogEnd = 0
    /// Median lead time in days of the cards issued in the interval; nil when none.
    public var leadTimeMedianDays: Double?

    public init(start: CivilDate, end: CivilDate, partial: Bool = false) {
        self.start = start
        self.end = end
        self.partial = partial
    }

    /// How many local days the interval covers.
    public var days: Int { end.dayNumber - start.dayNumber }
}

public struct ThroughputReport: Sendable, Equatable {
    public var from: CivilDate
    public var to: CivilDate
    public var interval: ThroughputInterval
    public var timezone: String
    public var generatedAt: ReportInstant
    /// Every registered agency, each with one entry per interval.
    public var agencies: [AgencyRow<[ThroughputFigures]>]
    /// The pooled totals per interval.
    public var totals: [ThroughputFigures]
}

/// Runs the throughput report in PostgreSQL (`throughputReportSQL`).
public func runThroughputReport(_ query: ThroughputReportQuery, on connection: Connection) throws -> ThroughputReport {
    try connection.reportSession { connection in
        guard query.from <= query.to else { throw ReportError("--from must not be after --to") }
        let days = query.to.dayNumber - query.from.dayNumber + 1
        let estimate = switch query.interval { case .day: days; case .week: days / 7 + 2; case .month: days / 28 + 2 }
        guard estimate <= ThroughputReportQuery.maximumIntervals + 2 else {
            throw ReportError("that is more than \(ThroughputReportQuery.maximumIntervals) intervals: choose a shorter period or a longer --interval")
        }
        let clock = try connection.reportQuery(instantSQL, [.null, .text(query.timezone)], timezone: query.timezone)
        let start = try connection.reportQuery(
            throughputStartSQL, [.text(query.from.description), .text(query.timezone)],
            timezone: query.timezone)[0].decode(PostgresTimestamp.self, column: "period_start")
        let rows = try connection.reportQuery(
            throughputReportSQL,
            [.text(query.from.description), .text(query.to.description), .text(query.interval.rawValue),
             .text(query.timezone), query.agency.map { .text($0) } ?? .null, start.postgresValue],
            timezone: query.timezone)
        var agencies: [AgencyRow<[ThroughputFigures]>] = []
        var totals: [ThroughputFigures] = []
        for row in rows {
            guard let start = CivilDate(iso: try row.decode(String.self, column: "local_start")),
                  let end = CivilDate(iso: try row.decode(String.self, column: "local_end"))
            else { throw ReportError("unexpected interval dates in the throughput result") }
            var f = ThroughputFigures(start: start, end: end)
            f.partial = try row.decode(Bool.self, column: "partial")
            f.received = try row.int("received")
            f.closed = try row.int("closed")
            f.cardsIssued = try row.int("cards_issued")
            f.backlogEnd = try row.int("backlog_end")
            f.leadTimeMedianDays = try row.optionalDouble("lead_median_days")
            if let code = try row.decode(String?.self, column: "agency_code") {
                if agencies.last?.agencyCode == code {
                    agencies[agencies.count - 1].figures.append(f)
                } else {
                    agencies.append(AgencyRow(agencyCode: code, agencyName: try row.decode(String.self, column: "agency_name"), figures: [f]))
                }
            } else {
                totals.append(f)
            }
        }
        if let agency = query.agency, agencies.isEmpty {
            throw ReportError("no agency with code \(agency) is registered (see `cardsync agency list`)", badArgument: true)
        }
        let c = clock[0]
        return ThroughputReport(
            from: query.from, to: query.to, interval: query.interval, timezone: query.timezone,
            generatedAt: ReportInstant(instant: try c.decode(PostgresTimestamp.self, column: "now"), offsetSeconds: try c.int("now_offset")),
            agencies: agencies, totals: totals)
    }
}
