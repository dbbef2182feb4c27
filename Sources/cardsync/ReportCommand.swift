import ArgumentParser
import CardCore
import CardReports
import Foundation
import PostgresClient

/// `cardsync report monthly|backlog|throughput`: the figures of ../shared/spec/reports.md,
/// computed in the central database.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Monthly issuance, backlog and throughput reports per agency.",
        discussion: """
            Every figure is computed in PostgreSQL as defined in the bureau's report specification \
            (docs/reports.md). Formats: text (default), json (also --json), csv (UTF-8 with BOM), md, \
            html (self-contained, printable on A4).

            Examples:
              cardsync report monthly --month 2026-10 --lang zh
              cardsync report backlog --format csv --output backlog.csv
              cardsync report throughput --from 2026-10-01 --to 2026-10-31 --interval week
            """,
        subcommands: [Monthly.self, Backlog.self, Throughput.self])

    /// Options every report takes.
    struct CommonOptions: ParsableArguments {
        @Option(name: .customLong("format"), help: ArgumentHelp("Output format: text (default), json, csv, md or html.", valueName: "FORMAT"))
        var chosenFormat: ReportFormat?
        @Flag(help: "The same as --format json.") var json = false
        @Option(name: .shortAndLong, help: ArgumentHelp("Write the report to this file instead of stdout.", valueName: "FILE"))
        var output: String?
        @Option(help: "Label language: en or zh.") var lang: ReportLanguage = .en
        @Option(help: ArgumentHelp("IANA time zone of dates and month boundaries.", valueName: "TZ"))
        var timezone: String = "Asia/Shanghai"
        @Option(help: ArgumentHelp("Only this agency.", valueName: "CODE"), transform: AgencyCode.argument) var agency: AgencyCode?
        @Flag(help: "Text format: one table with every column, however wide (default: tables that fit the terminal, 100 columns when not a terminal).")
        var wide = false

        /// The width the text form is fitted to: none with --wide; the terminal's when the report
        /// goes to it; 100 for a file or a pipe.
        var textWidth: Int? {
            if wide { return nil }
            return output == nil ? OutputWidth.current() : TerminalLayout.defaultWidth
        }

        /// The format asked for: `--json` is short for `--format json`.
        var format: ReportFormat { json ? .json : chosenFormat ?? .text }

        func validate() throws {
            if json, let chosenFormat, chosenFormat != .json {
                throw ValidationError("--json and --format \(chosenFormat.rawValue) contradict each other: --json is short for --format json")
            }
            guard !timezone.isEmpty else { throw ValidationError("--timezone must not be empty") }
        }

        /// Writes the rendered report to `--output` (atomically) or stdout.
        func emit(_ text: String) throws {
            guard let output else {
                FileHandle.standardOutput.write(Data(text.utf8))
                return
            }
            let url = URL(fileURLWithPath: output)
            do {
                try Data(text.utf8).write(to: url, options: .atomic)
            } catch {
                throw CommandFailure("cannot write the report to \(output): \(error.localizedDescription)",
                                     hint: "check that the directory exists and is writable")
            }
            FileHandle.standardError.write(Data("Wrote \(output)\n".utf8))
        }
    }

    /// Turns report errors into the CLI's user-facing failure: a bad value the person typed is a
    /// usage error of `command` (exit 64 with its usage line), anything else a failure (exit 1).
    static func running<T>(_ command: any ParsableCommand.Type, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ReportError where error.isBadArgument {
            throw UsageFailure(command, error.message)
        } catch let error as ReportError {
            throw CommandFailure(error.message)
        }
    }

    struct Monthly: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Monthly issuance report: one row per agency and the totals.",
            discussion: """
                Examples:
                  cardsync report monthly --month 2026-10
                  cardsync report monthly --month 2026-10 --agency CS-FR-001 --format html --lang zh --output 2026-10.html
                """)
        @Option(help: ArgumentHelp("The month, YYYY-MM (local to --timezone).", valueName: "YYYY-MM")) var month: String
        @Option(help: ArgumentHelp("Service level in days (applications open longer, cards issued later, breach it).", valueName: "DAYS"))
        var slaDays: Int = 30
        @OptionGroup var common: CommonOptions
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            guard YearMonth(month) != nil else {
                // "2026-13" has the shape; say what is wrong with it rather than repeat the shape.
                let shaped = month.utf8.count == 7 && month.utf8.enumerated().allSatisfy { i, c in
                    i == 4 ? c == UInt8(ascii: "-") : (0x30...0x39).contains(c)
                }
                throw ValidationError(shaped ? "--month \(month): the month must be 01 to 12 and the year 0001 to 9999"
                                             : "--month must be YYYY-MM, e.g. 2026-10")
            }
            guard slaDays >= 0 else { throw ValidationError("--sla-days must be 0 or more") }
        }

        func run() throws {
            let connection = try db.connectForReading()
            let query = MonthlyReportQuery(month: YearMonth(month)!, timezone: common.timezone, agency: common.agency?.rawValue, slaDays: slaDays)
            let report = try ReportCommand.running(Monthly.self) { try runMonthlyReport(query, on: connection) }
            try common.emit(render(report, format: common.format, lang: common.lang, textWidth: common.textWidth))
        }
    }

    struct Backlog: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open applications per agency at an instant, by status and age.",
            discussion: """
                Examples:
                  cardsync report backlog
                  cardsync report backlog --as-of 2026-10-31T18:00:00+08:00 --json
                """)
        @Option(help: ArgumentHelp(
            "The instant: RFC 3339 (2026-10-31T18:00:00+08:00), or a local date or date-time in --timezone (2026-11-01, 2026-11-01T08:30). Default: now.",
            valueName: "TIMESTAMP"))
        var asOf: String?
        @Option(help: ArgumentHelp("Service level in days.", valueName: "DAYS")) var slaDays: Int = 30
        @OptionGroup var common: CommonOptions
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            guard slaDays >= 0 else { throw ValidationError("--sla-days must be 0 or more") }
        }

        func run() throws {
            let connection = try db.connectForReading()
            let report = try ReportCommand.running(Backlog.self) { () throws -> BacklogReport in
                let instant = try asOf.map { try parseReportInstant($0, timezone: common.timezone, on: connection) }
                let query = BacklogReportQuery(asOf: instant, timezone: common.timezone, agency: common.agency?.rawValue, slaDays: slaDays)
                return try runBacklogReport(query, on: connection)
            }
            try common.emit(render(report, format: common.format, lang: common.lang, textWidth: common.textWidth))
        }
    }

    struct Throughput: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Received, closed, issued and backlog per agency and interval.",
            discussion: """
                The intervals are clipped to the period: a week or month cut short by --from or --to \
                covers only the days asked for and is marked partial (a Partial column; "partial": true in JSON).

                Examples:
                  cardsync report throughput --from 2026-10-01 --to 2026-10-31
                  cardsync report throughput --from 2026-01-01 --to 2026-12-31 --interval month --format csv --output 2026.csv
                """)
        @Option(help: ArgumentHelp("First local date, YYYY-MM-DD (the first interval starts on it).", valueName: "DATE")) var from: String
        @Option(help: ArgumentHelp("Last local date, YYYY-MM-DD, inclusive (the last interval ends with it).", valueName: "DATE"))
        var to: String
        @Option(help: "day, week (Monday to Sunday) or month.") var interval: ThroughputInterval = .week
        @OptionGroup var common: CommonOptions
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            guard let f = CivilDate(iso: from) else { throw ValidationError("--from must be a date YYYY-MM-DD") }
            guard let t = CivilDate(iso: to) else { throw ValidationError("--to must be a date YYYY-MM-DD") }
            guard f <= t else { throw ValidationError("--from must not be after --to") }
        }

        func run() throws {
            let connection = try db.connectForReading()
            let query = ThroughputReportQuery(from: CivilDate(iso: from)!, to: CivilDate(iso: to)!, interval: interval,
                                              timezone: common.timezone, agency: common.agency?.rawValue)
            let report = try ReportCommand.running(Throughput.self) { try runThroughputReport(query, on: connection) }
            try common.emit(render(report, format: common.format, lang: common.lang, textWidth: common.textWidth))
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}
extension ReportLanguage: ExpressibleByArgument {}
extension ThroughputInterval: ExpressibleByArgument {}
