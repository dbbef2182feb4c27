import ArgumentParser
import CardCore
import CardSync
import Foundation
import Logging
import PostgresClient

struct BureauCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bureau",
        abstract: "Record the bureau's decisions centrally.",
        discussion: """
            Examples:
              cardsync bureau approve 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01
              cardsync bureau reject 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 --reason "photo missing"
              cardsync bureau import decisions.jsonl
            """,
        subcommands: [Approve.self, Reject.self, Return.self, Produce.self, Dispatch.self, Import.self])

    /// Options every single-decision command shares.
    struct DecisionOptions: ParsableArguments {
        @Argument(help: "Application ids.") var applications: [String]
        @Option(help: "When the decision was taken (RFC 3339 with offset; default now).") var at: String?
        @OptionGroup var output: OutputFormatOptions
        @Flag(help: ArgumentHelp(
            "Record decisions for applications the central database does not know, as pending.",
            discussion: "Without it an unknown id refuses the whole command: it is usually a typing mistake. With it the decision waits until the agency's submission arrives."))
        var allowUnknown = false

        /// Checked while parsing, so a mistyped id gets this command's usage, not the top level's.
        func validate() throws {
            _ = try ids()
            _ = try instant()
        }

        func ids() throws -> [UUID] {
            guard !applications.isEmpty else { throw ValidationError("name at least one application id") }
            return try applications.map {
                guard let id = UUID(uuidString: $0) else { throw ValidationError("'\($0)' is not an application id (a UUID)") }
                return id
            }
        }

        func instant() throws -> Timestamp? {
            guard let at else { return nil }
            guard let t = Timestamp(rfc3339: at) else {
                throw ValidationError("--at '\(at)' is not an RFC 3339 timestamp with an offset, e.g. 2026-10-03T09:15:27+08:00")
            }
            return t
        }
    }

    /// The refusal of decisions for unknown ids, saying what to check before reaching for
    /// `--allow-unknown`. `needsAgency`: a dispatch without `--agency`, which has no agency to
    /// send an unknown application's card to.
    static func unknownFailure(_ ids: [UUID], given: Int, needsAgency: Bool = false) -> CommandFailure {
        let names = ids.map(\.lowercased).joined(separator: ", ")
        let what = ids.count == 1 ? "application \(names) is" : "\(ids.count) applications are"
        let listed = ids.count == 1 ? "" : ": \(names)"
        let escape = needsAgency
            ? "If a dispatch really comes before its application, add --allow-unknown and name the agency with --agency CODE "
                + "(an unknown application has no agency of its own); it is held as pending until the submission arrives."
            : "If a decision really comes before its application, add --allow-unknown: it is held as pending until the submission arrives."
        return CommandFailure(
            "\(what) not known to the central database\(listed); "
                + (given > 1 ? "none of the \(given) decisions was recorded" : "nothing was recorded"),
            hint: "check each id for typing mistakes (copy it from the agency's record, or from cardsync conflicts list), "
                + "and that the agency that took the application has synced and its events were merged "
                + "(at the agency, cardsync queue status DIR shows events not synced yet). " + escape)
    }

    static func record(_ type: EventType, _ options: DecisionOptions, db: DatabaseOptions,
                       connection: Connection? = nil, data: @escaping (UUID) -> JSONValue) throws {
        let recorder = BureauRecorder(connection: try connection ?? db.connect(), logger: Logger(label: "cardsync.bureau"))
        let results: [BureauRecorder.Recorded]
        do {
            results = try recorder.record(type, applications: try options.ids(), data: data, occurredAt: try options.instant(),
                                          unknownApplications: options.allowUnknown ? .hold : .refuse)
        } catch let refused as BureauRecorder.UnknownApplicationsError {
            throw unknownFailure(refused.applicationIDs, given: options.applications.count)
        }
        let held = results.filter { !$0.applicationKnown }.count
        if held > 0 {
            printError("warning: \(held) decision\(held == 1 ? "" : "s") recorded for applications the central database does not know "
                       + "(--allow-unknown): held as pending until their agency syncs the submission")
        }
        if options.output.isJSON {
            print(JSONWriter.string(.object(["recorded": .array(results.map {
                .object(["application_id": .string($0.applicationID.lowercased), "event_id": .string($0.eventID.lowercased),
                         "type": .string($0.type.rawValue), "outcome": .string($0.outcome),
                         "application_known": .bool($0.applicationKnown)])
            })]), pretty: true))
            return
        }
        for r in results {
            let meaning: String
            switch r.outcome {
            case "applied": meaning = "applied"
            case "pending" where !r.applicationKnown:
                meaning = "held as pending: the central database does not know this application yet; it applies when the agency syncs the submission"
            case "pending": meaning = "held as pending until the application reaches the right status"
            case "not_applied": meaning = "not applied: it cannot apply in the application's status (an invalid_transition conflict was opened)"
            default: meaning = r.outcome
            }
            print("\(r.type.rawValue) \(r.applicationID.lowercased): \(meaning)")
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve applications.",
            discussion: """
                Examples:
                  cardsync bureau approve 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01
                  cardsync bureau approve 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 0d4e25fa-1b2c-4d3e-8f9a-0b1c2d3e4f50 --format json
                """)
        @OptionGroup var decision: DecisionOptions
        @OptionGroup var db: DatabaseOptions
        func run() throws { try BureauCommand.record(.approved, decision, db: db) { _ in .object([:]) } }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reject applications.",
            discussion: """
                Examples:
                  cardsync bureau reject 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 --reason "the guardian is not the child's guardian"
                """)
        @OptionGroup var decision: DecisionOptions
        @Option(help: "Why (sent to the agency).") var reason = "not given"
        @OptionGroup var db: DatabaseOptions
        func run() throws { try BureauCommand.record(.rejected, decision, db: db) { _ in ["reason": .string(reason)] } }
    }

    struct Return: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Return applications to the agency for correction.",
            discussion: """
                Examples:
                  cardsync bureau return 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 --reason "photo missing"
                """)
        @OptionGroup var decision: DecisionOptions
        @Option(help: "What to correct (sent to the agency).") var reason = "not given"
        @OptionGroup var db: DatabaseOptions
        func run() throws { try BureauCommand.record(.returned, decision, db: db) { _ in ["reason": .string(reason)] } }
    }

    struct Produce: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that cards were produced.",
            discussion: """
                Without --card-number each application gets a card number derived from its id (C and 8 digits), \
                as a stand-in for the card production system's number.

                Examples:
                  cardsync bureau produce 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 --card-number A12345678
                  cardsync bureau produce 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 0d4e25fa-1b2c-4d3e-8f9a-0b1c2d3e4f50
                """)
        @OptionGroup var decision: DecisionOptions
        @Option(help: "The card number (one application only).") var cardNumber: String?
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            if cardNumber != nil && decision.applications.count > 1 {
                throw ValidationError("--card-number names one card: produce one application at a time, or leave it out")
            }
        }

        func run() throws {
            let given = cardNumber
            try BureauCommand.record(.cardProduced, decision, db: db) { id in
                ["card_number": .string(given ?? Self.derivedCardNumber(id))]
            }
        }

        /// "C" and eight digits from the application id: stable, so re-running the command for
        /// the same application names the same card.
        static func derivedCardNumber(_ id: UUID) -> String {
            var value: UInt64 = 14_695_981_039_346_656_037
            for byte in id.lowercased.utf8 {
                value = (value ^ UInt64(byte)) &* 1_099_511_628_211
            }
            let digits = String(value % 100_000_000)
            return "C" + String(repeating: "0", count: 8 - digits.count) + digits
        }
    }

    struct Dispatch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that cards were dispatched to an agency for collection.",
            discussion: """
                Without --agency each card goes to the agency that took the application.

                Examples:
                  cardsync bureau dispatch 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01
                  cardsync bureau dispatch 9e2f6b1a-3c4d-4e5f-8a7b-1c2d3e4f5a01 --agency CS-YL-002
                """)
        @OptionGroup var decision: DecisionOptions
        @Option(name: [.customLong("agency"), .customLong("to")], help: "Code of the agency the cards go to.") var agency: String?
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            var targets: [UUID: String] = [:]
            // The owning agencies come from the projection: bring it up to the ledger first.
            let connection = try db.connectForReading()
            if agency == nil {
                let ids = try decision.ids()
                for row in try connection.query(
                    "SELECT application_id, owning_agency FROM cardsync.applications WHERE application_id = ANY($1::uuid[])",
                    [.uuidArray(ids)]) {
                    targets[try row.decode(UUID.self, column: "application_id")] = try row.decode(String.self, column: "owning_agency")
                }
                var seen = Set<UUID>()
                let unknown = ids.filter { targets[$0] == nil && seen.insert($0).inserted }
                if !unknown.isEmpty {
                    guard decision.allowUnknown else { throw BureauCommand.unknownFailure(unknown, given: ids.count, needsAgency: true) }
                    throw CommandFailure("\(unknown.map(\.lowercased).joined(separator: ", ")): not known centrally, so no agency to dispatch to",
                                         hint: "name the agency with --agency CODE")
                }
            }
            let fixed = agency
            try BureauCommand.record(.cardDispatched, decision, db: db, connection: connection) { id in
                ["agency_code": .string(fixed ?? targets[id] ?? "")]
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import bureau decisions from a JSON-lines file (outbox line shape without seq).",
            discussion: """
                Invalid lines are refused and listed (exit 1); the valid ones are recorded. Importing the same file \
                twice changes nothing. Decisions for applications the central database does not know yet are held \
                as pending (their agency may not have synced) and counted in the summary. A progress bar shows on a \
                terminal.

                Examples:
                  cardsync bureau import decisions.jsonl
                  cardsync bureau import city/bureau-decisions.jsonl --format json
                """)
        @Argument(help: "JSON-lines file.") var file: String
        @OptionGroup var output: OutputFormatOptions
        @Option(help: "Days a pending event may wait for its prerequisite before a pending_expired conflict opens.") var pendingHorizonDays: Double = 14
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let url = URL(fileURLWithPath: file)
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw CommandFailure("cannot read \(file)", hint: "check the path and its permissions")
            }
            guard pendingHorizonDays >= 0 else { throw ValidationError("--pending-horizon-days cannot be negative") }
            let connection = try db.connect()
            let bar = ProgressBar("bureau import")
            // Smaller batches on a terminal, so that the bar moves on a file of one batch's size
            // (20,000 lines took over ten seconds with no sign of life); off a terminal the
            // default batch keeps a scripted import as fast as before.
            let batchSize = bar.isEnabled ? 2_000 : 20_000
            let report = try BureauRecorder(connection: connection, logger: Logger(label: "cardsync.bureau"))
                .importFile(url, batchSize: batchSize, pendingHorizonSeconds: Int64(pendingHorizonDays * 86_400)) { done, total in
                    bar.update(total > 0 ? Double(done) / Double(total) : 1, note: Self.megabytes(done, of: total))
                }
            bar.finish()
            let m = report.merged
            if output.isJSON {
                print(JSONWriter.object([
                    ("lines", .int(Int64(report.lines))), ("recorded", .int(Int64(m.accepted))),
                    ("already_present", .int(Int64(m.alreadyPresent))), ("pending", .int(Int64(m.pending))),
                    ("pending_unknown_applications", .int(Int64(report.pendingForUnknownApplications))),
                    ("not_applied", .int(Int64(m.notApplied))), ("conflicts_opened", .int(Int64(m.conflictsOpened))),
                    ("refused", .array(report.refused.map {
                        .object(["line": .int(Int64($0.line)), "error": .string($0.code), "detail": .string($0.detail)])
                    })),
                ], pretty: true))
            } else {
                print("Read \(report.lines) lines: recorded \(m.accepted) (\(m.pending) pending, \(m.notApplied) not applicable), "
                      + "\(m.alreadyPresent) already present, \(report.refused.count) refused, \(m.conflictsOpened) conflicts opened.")
                if report.pendingForUnknownApplications > 0 {
                    let n = report.pendingForUnknownApplications
                    print("\(n) held as pending for applications the centre does not know yet: they apply when their agencies "
                          + "sync the submissions.")
                }
                for r in report.refused { printError("refused line \(r.line): \(r.code): \(r.detail)") }
            }
            if !report.refused.isEmpty { throw ExitCode(1) }
        }

        /// `3.1/12.0 MB`: how much of the file is read.
        static func megabytes(_ done: Int64, of total: Int64) -> String {
            String(format: "%.1f/%.1f MB", Double(done) / 1_000_000, Double(total) / 1_000_000)
        }
    }
}
