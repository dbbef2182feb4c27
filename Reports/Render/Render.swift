import CardCore

/// Renders the monthly issuance report. `text`, `md`, `csv` and `html` print day figures
/// rounded to two decimals; `json` prints them unrounded, in the shape fixed by reports.md.
///
/// `textWidth` only changes `text`: the columns it may take (the report is then printed as
/// several tables that each fit); `nil` prints one table however wide (`--wide`). The other
/// formats are the same whatever it is.
public func render(_ report: MonthlyReport, format: ReportFormat, lang: ReportLanguage = .en,
                   textWidth: Int? = TerminalLayout.defaultWidth) -> String {
    switch format {
    case .json: return monthlyJSON(report)
    case .text: return monthlyTable(report, Labels(lang: lang)).renderText(maxWidth: textWidth)
    case .md: return monthlyTable(report, Labels(lang: lang)).renderMarkdown()
    case .csv: return monthlyTable(report, Labels(lang: lang)).renderCSV()
    case .html: return monthlyHTML(report, Labels(lang: lang))
    }
}

/// Renders the backlog report.
public func render(_ report: BacklogReport, format: ReportFormat, lang: ReportLanguage = .en,
                   textWidth: Int? = TerminalLayout.defaultWidth) -> String {
    switch format {
    case .json: return backlogJSON(report)
    case .text: return backlogTable(report, Labels(lang: lang)).renderText(maxWidth: textWidth)
    case .md: return backlogTable(report, Labels(lang: lang)).renderMarkdown()
    case .csv: return backlogTable(report, Labels(lang: lang)).renderCSV()
    case .html: return backlogHTML(report, Labels(lang: lang))
    }
}

/// Renders the throughput report.
public func render(_ report: ThroughputReport, format: ReportFormat, lang: ReportLanguage = .en,
                   textWidth: Int? = TerminalLayout.defaultWidth) -> String {
    switch format {
    case .json: return throughputJSON(report)
    case .text: return throughputTable(report, Labels(lang: lang)).renderText(maxWidth: textWidth)
    case .md: return throughputTable(report, Labels(lang: lang)).renderMarkdown()
    case .csv: return throughputTable(report, Labels(lang: lang)).renderCSV()
    case .html: return throughputHTML(report, Labels(lang: lang))
    }
}

// MARK: - Monthly

let monthlyColumnKeys = [
    "agency_code", "agency_name", "received", "duplicates", "approved", "rejected", "returned", "withdrawn",
    "cards_produced", "cards_issued", "backlog_start", "backlog_end", "net_flow", "lead_median", "lead_p90",
    "age_0_7", "age_8_15", "age_16_30", "age_31_plus", "sla_breaches", "conflicts_opened", "conflicts_resolved",
]

/// The monthly columns by what they tell (intake, decisions, cards, backlog, lead times, ages and
/// SLA, conflicts): the text form splits a table too wide for the terminal between these.
let monthlySections = [[2, 3], [4, 5, 6, 7], [8, 9], [10, 11, 12], [13, 14], [15, 16, 17, 18, 19], [20, 21]]

func monthlyCells(_ f: MonthlyFigures) -> [ReportTable.Cell] {
    [.int(f.received), .int(f.duplicates), .int(f.approved), .int(f.rejected), .int(f.returned), .int(f.withdrawn),
     .int(f.cardsProduced), .int(f.cardsIssued), .int(f.backlogStart), .int(f.backlogEnd), .int(f.netFlow),
     .days(f.leadTimeDays.median), .days(f.leadTimeDays.p90)]
        + f.agingEnd.values.map { .int($0) }
        + [.int(f.slaBreaches), .int(f.conflictsOpened), .int(f.conflictsResolved)]
}

func monthlyContext(_ r: MonthlyReport, _ l: Labels) -> [(String, String)] {
    [(l["month"], r.month.description),
     (l["period"], r.periodStart.localMinute + " – " + r.periodEnd.localMinute),
     (l["timezone"], r.timezone),
     (l["sla_days"], String(r.slaDays)),
     (l["generated_at"], r.generatedAt.localMinute)]
}

func monthlyTable(_ r: MonthlyReport, _ l: Labels) -> ReportTable {
    var rows = r.agencies.map { ReportTable.Row(cells: [.text($0.agencyCode), .text($0.agencyName)] + monthlyCells($0.figures)) }
    rows.append(ReportTable.Row(cells: [.text(""), .text(l["total"])] + monthlyCells(r.totals), isTotal: true))
    return ReportTable(title: l["monthly.title"] + " " + r.month.description, context: monthlyContext(r, l),
                       headers: monthlyColumnKeys.map { l[$0] }, rows: rows, footnote: l["footnote.monthly"],
                       sections: monthlySections, notice: monthlyNotice(r, l))
}

/// What a reader must know before reading the figures: the month has not begun, or is not over
/// (its figures will still change). Nil for a past month.
func monthlyNotice(_ r: MonthlyReport, _ l: Labels) -> String? {
    let now = r.generatedAt.instant.microsecondsSince1970
    if now < r.periodStart.instant.microsecondsSince1970 { return l.filled("notice.month_future", r.generatedAt.localMinute) }
    if now < r.periodEnd.instant.microsecondsSince1970 { return l.filled("notice.month_incomplete", r.generatedAt.localMinute) }
    return nil
}

func monthlyFiguresJSON(_ f: MonthlyFigures) -> [(String, OrderedJSON)] {
    [("received", int(f.received)), ("duplicates", int(f.duplicates)), ("approved", int(f.approved)),
     ("rejected", int(f.rejected)), ("returned", int(f.returned)), ("withdrawn", int(f.withdrawn)),
     ("cards_produced", int(f.cardsProduced)), ("cards_issued", int(f.cardsIssued)),
     ("backlog_start", int(f.backlogStart)), ("backlog_end", int(f.backlogEnd)), ("net_flow", int(f.netFlow)),
     ("lead_time_days", .object([("median", double(f.leadTimeDays.median)), ("p90", double(f.leadTimeDays.p90))])),
     ("aging_end", agingJSON(f.agingEnd)),
     ("sla_breaches", int(f.slaBreaches)), ("conflicts_opened", int(f.conflictsOpened)),
     ("conflicts_resolved", int(f.conflictsResolved))]
}

func monthlyJSON(_ r: MonthlyReport) -> String {
    let doc: OrderedJSON = .object([
        ("report", "monthly"),
        ("month", .value(.string(r.month.description))),
        ("timezone", .value(.string(r.timezone))),
        ("generated_at", .value(.string(r.generatedAt.rfc3339))),
        ("sla_days", int(r.slaDays)),
        ("agencies", .array(r.agencies.map { row in
            .object([("agency_code", .value(.string(row.agencyCode))), ("agency_name", .value(.string(row.agencyName)))]
                    + monthlyFiguresJSON(row.figures))
        })),
        ("totals", .object(monthlyFiguresJSON(r.totals))),
    ])
    return JSONWriter.string(doc, pretty: true) + "\n"
}

// MARK: - Backlog

func backlogCells(_ f: BacklogFigures) -> [ReportTable.Cell] {
    [.int(f.open)] + BacklogFigures.statuses.map { .int(f.count($0)) } + f.aging.values.map { .int($0) }
        + [f.oldestAgeDays.map { .int($0) } ?? .text("-"), .int(f.slaBreaches)]
}

func backlogTable(_ r: BacklogReport, _ l: Labels) -> ReportTable {
    let headers = [l["agency_code"], l["agency_name"], l["open"]] + BacklogFigures.statuses.map(l.status)
        + (0..<4).map(l.ageBucket) + [l["oldest_age_days"], l["sla_breaches"]]
    var rows = r.agencies.map { ReportTable.Row(cells: [.text($0.agencyCode), .text($0.agencyName)] + backlogCells($0.figures)) }
    rows.append(ReportTable.Row(cells: [.text(""), .text(l["total"])] + backlogCells(r.totals), isTotal: true))
    // Split for a terminal into the counts by status and the ages.
    return ReportTable(title: l["backlog.title"], context: backlogContext(r, l), headers: headers, rows: rows,
                       footnote: l["footnote.backlog"], sections: [Array(2...8), Array(9...14)],
                       notice: r.asOf.instant.microsecondsSince1970 > r.generatedAt.instant.microsecondsSince1970
                           ? l.filled("notice.asof_future", r.generatedAt.localMinute) : nil)
}

func backlogContext(_ r: BacklogReport, _ l: Labels) -> [(String, String)] {
    [(l["as_of"], r.asOf.localMinute), (l["timezone"], r.timezone), (l["sla_days"], String(r.slaDays)),
     (l["generated_at"], r.generatedAt.localMinute)]
}

func backlogFiguresJSON(_ f: BacklogFigures) -> [(String, OrderedJSON)] {
    [("open", int(f.open)),
     ("by_status", .object(BacklogFigures.statuses.map { ($0.rawValue, int(f.count($0))) })),
     ("aging", agingJSON(f.aging)),
     ("oldest_age_days", f.oldestAgeDays.map { int($0) } ?? .value(.null)),
     ("sla_breaches", int(f.slaBreaches))]
}

func backlogJSON(_ r: BacklogReport) -> String {
    let doc: OrderedJSON = .object([
        ("report", "backlog"),
        ("as_of", .value(.string(r.asOf.rfc3339))),
        ("timezone", .value(.string(r.timezone))),
        ("generated_at", .value(.string(r.generatedAt.rfc3339))),
        ("sla_days", int(r.slaDays)),
        ("agencies", .array(r.agencies.map { row in
            .object([("agency_code", .value(.string(row.agencyCode))), ("agency_name", .value(.string(row.agencyName)))]
                    + backlogFiguresJSON(row.figures))
        })),
        ("totals", .object(backlogFiguresJSON(r.totals))),
    ])
    return JSONWriter.string(doc, pretty: true) + "\n"
}

// MARK: - Throughput

func throughputCells(_ f: ThroughputFigures, _ l: Labels) -> [ReportTable.Cell] {
    [.text(f.start.description), .text(CivilDate(dayNumber: f.end.dayNumber - 1).description),
     .text(f.partial ? l["partial.yes"] : ""),
     .int(f.received), .int(f.closed), .int(f.cardsIssued), .int(f.backlogEnd), .days(f.leadTimeMedianDays)]
}

func throughputContext(_ r: ThroughputReport, _ l: Labels) -> [(String, String)] {
    [(l["period"], r.from.description + " – " + r.to.description), (l["interval"], l.interval(r.interval)),
     (l["timezone"], r.timezone), (l["generated_at"], r.generatedAt.localMinute)]
}

func throughputTable(_ r: ThroughputReport, _ l: Labels) -> ReportTable {
    let headers = [l["agency_code"], l["agency_name"], l["interval_start"], l["interval_end"], l["partial"], l["received"], l["closed"],
                   l["cards_issued"], l["backlog_end"], l["lead_median_interval"]]
    var rows: [ReportTable.Row] = []
    for agency in r.agencies {
        for f in agency.figures {
            rows.append(ReportTable.Row(cells: [.text(agency.agencyCode), .text(agency.agencyName)] + throughputCells(f, l)))
        }
    }
    for f in r.totals {
        rows.append(ReportTable.Row(cells: [.text(""), .text(l["total"])] + throughputCells(f, l), isTotal: true))
    }
    // An interval's row is named by the agency and its dates: all four repeat in every table.
    // The partial mark follows them in the first table only: as a fifth key column it would
    // leave no room beside a 32-column agency name for the widest figure in 100 columns.
    let footnote = l["footnote.throughput"] + (r.totals.contains(where: \.partial) ? "\n" + l["footnote.partial"] : "")
    return ReportTable(title: l["throughput.title"], context: throughputContext(r, l), headers: headers, rows: rows,
                       footnote: footnote, keyColumns: 4, notice: throughputNotice(r, l))
}

/// The period has not begun or is not over when the report is generated (a `--to` of today or
/// later): its last intervals will still change. Nil for a past period.
func throughputNotice(_ r: ThroughputReport, _ l: Labels) -> String? {
    // The local date the report was generated on, in the report's time zone.
    guard let today = CivilDate(iso: String(r.generatedAt.rfc3339.prefix(10))) else { return nil }
    if today < r.from { return l.filled("notice.period_future", r.generatedAt.localMinute) }
    if today <= r.to { return l.filled("notice.period_incomplete", r.generatedAt.localMinute) }
    return nil
}

func throughputIntervalsJSON(_ figures: [ThroughputFigures]) -> OrderedJSON {
    .array(figures.map { f in
        .object([("start", .value(.string(f.start.description))), ("end", .value(.string(f.end.description))),
                 ("received", int(f.received)), ("closed", int(f.closed)), ("cards_issued", int(f.cardsIssued)),
                 ("backlog_end", int(f.backlogEnd)), ("lead_time_median_days", double(f.leadTimeMedianDays)),
                 ("partial", .value(.bool(f.partial)))])
    })
}

func throughputJSON(_ r: ThroughputReport) -> String {
    let doc: OrderedJSON = .object([
        ("report", "throughput"),
        ("from", .value(.string(r.from.description))),
        ("to", .value(.string(r.to.description))),
        ("interval", .value(.string(r.interval.rawValue))),
        ("timezone", .value(.string(r.timezone))),
        ("generated_at", .value(.string(r.generatedAt.rfc3339))),
        ("agencies", .array(r.agencies.map { row in
            .object([("agency_code", .value(.string(row.agencyCode))), ("agency_name", .value(.string(row.agencyName))),
                     ("intervals", throughputIntervalsJSON(row.figures))])
        })),
        ("totals", .object([("intervals", throughputIntervalsJSON(r.totals))])),
    ])
    return JSONWriter.string(doc, pretty: true) + "\n"
}

// MARK: - JSON helpers

func int(_ n: Int) -> OrderedJSON { .value(.int(Int64(n))) }

func double(_ d: Double?) -> OrderedJSON { d.map { .value(.double($0)) } ?? .value(.null) }

func agingJSON(_ a: AgingBuckets) -> OrderedJSON {
    .object(zip(AgingBuckets.keys, a.values).map { ($0, int($1)) })
}
