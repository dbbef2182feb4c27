import CardCore
import Foundation
import CardReports
import PostgresClient

/// `cardsync bench report`: how long one month's report takes on a large history, and how much
/// that time grows from a history ten times smaller (the month itself holds the same amount of
/// activity in both, so a report whose cost follows the month, not the history, barely grows).
public struct ReportBenchmark {
    public struct Options: Sendable {
        /// Applications in the large history (about 20 years of a city's children by default).
        public var applications: Int = 2_000_000
        /// Years of history in the large database; the small one has a tenth of both.
        public var years: Double = 20
        public var agencies: Int = 16
        /// Timed runs per database (after one warm-up run); the median is reported.
        public var runs: Int = 7
        public var timezone: String = "Asia/Shanghai"
        public var slaDays: Int = 30
        public var smallFraction: Double = 0.1
        public var seed: Int64 = 1

        public init() {}
    }

    /// One database's figures.
    public struct Measurement: Sendable {
        public var applications: Int
        public var ledgerEvents: Int
        public var years: Double
        public var loadSeconds: Double
        public var runsMilliseconds: [Double]
        public var medianMilliseconds: Double
    }

    public struct Result: Sendable {
        public var month: YearMonth
        public var timezone: String
        public var large: Measurement
        public var small: Measurement
        /// large median / small median.
        public var ratio: Double
        public static let targetMilliseconds = 500.0
        public static let targetRatio = 1.5
        public var meetsTargets: Bool { large.medianMilliseconds < Self.targetMilliseconds && ratio <= Self.targetRatio }
    }

    public var options: Options
    public init(options: Options) { self.options = options }

    /// Loads both databases and measures. `database(name)` must return a connection to a new,
    /// empty, migrated database; `progress` receives one line per step (for stderr).
    public func run(database: (String) throws -> Connection, progress: (String) -> Void) throws -> Result {
        let large = try database("cardsync_bench_large")
        let end = try large.query("SELECT now() AS now")[0].decode(PostgresTimestamp.self, column: "now")
        // The latest complete month in the time zone.
        let today = try large.query("SELECT (now() AT TIME ZONE $1::text)::date::text AS d", [.text(options.timezone)])[0]
            .decode(String.self, column: "d")
        guard let date = CivilDate(iso: today) else { throw ReportError("cannot read today's date") }
        let month = YearMonth(date).previous

        let smallApplications = max(1, Int((Double(options.applications) * options.smallFraction).rounded()))
        progress("loading \(options.applications) applications over \(options.years) years…")
        let largeLoad = try load(large, applications: options.applications, years: options.years, end: end)
        progress("loaded in \(String(format: "%.1f", largeLoad.seconds)) s (\(largeLoad.events) ledger events); timing report monthly --month \(month)…")
        let largeRuns = try measure(large, month: month)

        let small = try database("cardsync_bench_small")
        progress("loading \(smallApplications) applications over \(options.years * options.smallFraction) years…")
        let smallLoad = try load(small, applications: smallApplications, years: options.years * options.smallFraction, end: end)
        progress("loaded in \(String(format: "%.1f", smallLoad.seconds)) s (\(smallLoad.events) ledger events); timing…")
        let smallRuns = try measure(small, month: month)

        let l = Measurement(applications: options.applications, ledgerEvents: largeLoad.events, years: options.years,
                            loadSeconds: largeLoad.seconds, runsMilliseconds: largeRuns, medianMilliseconds: median(largeRuns))
        let s = Measurement(applications: smallApplications, ledgerEvents: smallLoad.events, years: options.years * options.smallFraction,
                            loadSeconds: smallLoad.seconds, runsMilliseconds: smallRuns, medianMilliseconds: median(smallRuns))
        return Result(month: month, timezone: options.timezone, large: l, small: s,
                      ratio: s.medianMilliseconds > 0 ? l.medianMilliseconds / s.medianMilliseconds : .infinity)
    }

    /// Fills a migrated database with `applications` consistent histories ending at `end`.
    ///
    /// The secondary indexes of the ledger and the projection are dropped for the load and then
    /// rebuilt from their own definitions (`pg_get_indexdef`), which is several times faster than
    /// maintaining them row by row; the schema afterwards is exactly the migrated one.
    public func load(_ c: Connection, applications: Int, years: Double, end: PostgresTimestamp) throws -> (seconds: Double, events: Int) {
        let started = Date()
        try c.executeScript("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off")
        let indexes = try c.query(savedIndexesSQL).map {
            (name: try $0.decode(String.self, column: "indexname"), definition: try $0.decode(String.self, column: "indexdef"))
        }
        try c.withTransaction { c in
            for index in indexes {
                // An identifier from the catalog, quoted by libpq: no value is ever spliced here.
                try c.executeScript("DROP INDEX cardsync.\(try c.escapeIdentifier(index.name))")
            }
            try c.execute(benchmarkAgenciesSQL, [.int(options.agencies)])
            try c.execute(benchmarkCreateTableSQL)
            try c.execute(benchmarkApplicationsTableSQL, [.int(applications), .int(options.agencies), end.postgresValue,
                                                          .double(years), .int64(options.seed)])
            try c.execute(benchmarkApplicationsSQL)
            try c.execute(benchmarkLedgerSQL)
            try c.execute(benchmarkConflictsSQL)
            try c.executeScript("DROP TABLE bench_apps")
            for index in indexes {
                // The catalog's own CREATE INDEX statement for the index dropped above.
                try c.executeScript(index.definition)
            }
        }
        // One statement per call: a multi-statement string is one implicit transaction, and VACUUM
        // refuses to run inside one. VACUUM sets the visibility map, as autovacuum would soon do.
        for table in ["ledger", "applications", "conflicts", "agencies"] {
            try c.executeScript("VACUUM ANALYZE cardsync.\(table)")
        }
        let events = try c.query("SELECT count(*) AS n FROM cardsync.ledger")[0].decode(Int.self, column: "n")
        return (Date().timeIntervalSince(started), events)
    }

    /// One warm-up run, then `runs` timed runs of the whole monthly report (both statements).
    public func measure(_ c: Connection, month: YearMonth) throws -> [Double] {
        let query = MonthlyReportQuery(month: month, timezone: options.timezone, slaDays: options.slaDays)
        _ = try runMonthlyReport(query, on: c)
        var times: [Double] = []
        for _ in 0..<max(1, options.runs) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try runMonthlyReport(query, on: c)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1_000_000)
        }
        return times
    }
}

func median(_ values: [Double]) -> Double {
    let v = values.sorted()
    guard !v.isEmpty else { return 0 }
    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

/// The secondary (non-constraint) indexes of the tables the benchmark bulk-loads. A partitioned
/// table's index (the ledger's, migration 7) is defined `ON ONLY` the parent; rebuilt without
/// `ONLY`, it is made on every partition again, as the migration made it.
let savedIndexesSQL: PostgresQuery = #"""
SELECT i.indexname, replace(i.indexdef, ' ON ONLY ', ' ON ') AS indexdef
FROM pg_indexes i
WHERE i.schemaname = 'cardsync' AND i.tablename IN ('ledger', 'applications', 'conflicts')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname AND k.connamespace = 'cardsync'::regnamespace)
ORDER BY i.tablename, i.indexname
"""#

extension ReportBenchmark.Result {
    /// The result as one JSON document.
    public var json: String {
        func measurement(_ m: ReportBenchmark.Measurement) -> OrderedJSON {
            .object([("applications", .value(.int(Int64(m.applications)))), ("ledger_events", .value(.int(Int64(m.ledgerEvents)))),
                     ("years", .value(.double(m.years))), ("load_seconds", .value(.double(rounded(m.loadSeconds, 2)))),
                     ("runs_ms", .array(m.runsMilliseconds.map { .value(.double(rounded($0, 2))) })),
                     ("median_ms", .value(.double(rounded(m.medianMilliseconds, 2))))])
        }
        let doc: OrderedJSON = .object([
            ("benchmark", "report monthly"), ("month", .value(.string(month.description))),
            ("timezone", .value(.string(timezone))),
            ("large", measurement(large)), ("small", measurement(small)),
            ("ratio", .value(.double(rounded(ratio, 3)))),
            ("targets", .object([("large_median_ms_below", .value(.double(Self.targetMilliseconds))),
                                 ("ratio_at_most", .value(.double(Self.targetRatio)))])),
            ("meets_targets", .value(.bool(meetsTargets))),
        ])
        return JSONWriter.string(doc, pretty: true) + "\n"
    }

    /// The result as a few lines of text.
    public var text: String {
        func line(_ name: String, _ m: ReportBenchmark.Measurement) -> String {
            "\(name): \(m.applications) applications, \(m.ledgerEvents) ledger events, \(m.years) years; loaded in "
                + String(format: "%.1f s", m.loadSeconds) + "; report median " + String(format: "%.1f ms", m.medianMilliseconds)
                + " (runs: " + m.runsMilliseconds.map { String(format: "%.1f", $0) }.joined(separator: ", ") + ")\n"
        }
        return "cardsync bench report — report monthly --month \(month) --timezone \(timezone)\n"
            + line("large", large) + line("small", small)
            + String(format: "growth large/small: %.2f× (target ≤ %.1f×); large median %.1f ms (target < %.0f ms): ",
                     ratio, Self.targetRatio, large.medianMilliseconds, Self.targetMilliseconds)
            + (meetsTargets ? "met" : "NOT met") + "\n"
    }
}

private func rounded(_ x: Double, _ digits: Int) -> Double {
    let p = pow(10.0, Double(digits))
    return (x * p).rounded() / p
}
