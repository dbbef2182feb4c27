import ArgumentParser
import CardCore
import CardReports
import CardSync
import Foundation
import Logging
import PostgresClient
#if canImport(Glibc)
import Glibc
#endif

/// `cardsync conflicts list | show | resolve` (../shared/spec/cli.md, lifecycle.md "Conflicts").
struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "Review and resolve conflicting records.",
        discussion: """
            Conflicts are detected while events are merged: duplicate applications for one child, \
            concurrent amendments (merged automatically, listed for review), events that can never \
            apply, events pending past the horizon, and event ids reused for different content. \
            Identity numbers and phone numbers are always shown masked.

            Examples:
              cardsync conflicts list
              cardsync conflicts show 12 --lang zh
              cardsync conflicts resolve 12 --keep 0d4e25fa --note "same child, the earlier application stays"
            """,
        subcommands: [List.self, Show.self, Resolve.self])

    /// Times in tables: `2026-10-03 09:15` in the bureau's offset (+08:00), whatever offset
    /// the event was written with.
    static func shortTime(_ t: Timestamp?) -> String {
        guard let t else { return "" }
        return String(t.format(offsetSeconds: ConflictReview.displayOffsetSeconds).prefix(16))
            .replacingOccurrences(of: "T", with: " ")
    }

    /// `2026-10-03T09:15:27+08:00`: whole seconds in the bureau's offset.
    static func time(_ t: Timestamp?) -> String { ConflictReview.readable(t) }

    static func shortID(_ id: UUID) -> String { String(id.lowercased.prefix(8)) }

    static func failure(_ error: ConflictError) -> CommandFailure {
        CommandFailure(error.message, hint: error.hint)
    }

    // MARK: list

    enum ListFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, csv
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List conflicts, oldest first.",
            discussion: """
                DATE is YYYY-MM-DD, a calendar day in Asia/Shanghai (+08:00), both ends included; an \
                RFC 3339 timestamp with offset is used as an exact bound. CSV is RFC 4180, UTF-8 with a BOM.

                Examples:
                  cardsync conflicts list
                  cardsync conflicts list --status all --kind duplicate_application --agency CS-FR-001
                  cardsync conflicts list --from 2026-10-01 --to 2026-10-31 --format csv > october.csv
                """)

        @Option(help: "open (default), resolved or all.") var status: String = "open"
        @Option(help: "Only this kind: duplicate_application, concurrent_amendment, invalid_transition, pending_expired or event_id_reuse.")
        var kind: String?
        @Option(help: "Only conflicts naming this agency code.", transform: AgencyCode.argument) var agency: AgencyCode?
        @Option(help: ArgumentHelp("Detected on or after this day.", valueName: "DATE")) var from: String?
        @Option(help: ArgumentHelp("Detected on or before this day.", valueName: "DATE")) var to: String?
        @Option(help: ArgumentHelp("Output format: text (default), json or csv.", valueName: "FORMAT")) var format: ListFormat?
        @Flag(help: "The same as --format json.") var json = false
        @Flag(help: "Text format: every column in full on one line per conflict, however wide.") var wide = false
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            if json, let format, format != .json {
                throw ValidationError("--json and --format \(format.rawValue) contradict each other: --json is short for --format json")
            }
            _ = try filter()
        }

        /// `--format`, with `--json` standing for `--format json` as on every other command.
        var chosenFormat: ListFormat { json ? .json : format ?? .text }

        func filter() throws -> ConflictFilter {
            guard let status = ConflictFilter.Status(rawValue: status) else {
                throw ValidationError("--status must be open, resolved or all")
            }
            var filter = ConflictFilter(status: status)
            if let kind {
                guard let k = ConflictKind(rawValue: kind) else {
                    throw ValidationError("--kind must be one of \(ConflictKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.kind = k
            }
            filter.agency = agency?.rawValue
            if let from { filter.detectedFrom = try Self.bound(from, option: "--from", endOfDay: false) }
            if let to { filter.detectedBefore = try Self.bound(to, option: "--to", endOfDay: true) }
            if let a = filter.detectedFrom, let b = filter.detectedBefore, b <= a {
                throw ValidationError("--to must not be before --from")
            }
            return filter
        }

        /// The instant a DATE or timestamp option stands for: the start of the day for --from,
        /// the start of the next day for --to (so the whole day is included).
        static func bound(_ text: String, option: String, endOfDay: Bool) throws -> Timestamp {
            if let t = Timestamp(rfc3339: text) {
                return endOfDay ? Timestamp(microseconds: t.microseconds + 1) : t
            }
            guard let day = CivilDate(iso: text) else {
                throw ValidationError("\(option) must be a date YYYY-MM-DD (or an RFC 3339 timestamp with offset)")
            }
            let offset = Int64(ConflictReview.displayOffsetSeconds)
            let days = Int64(day.dayNumber + (endOfDay ? 1 : 0))
            return Timestamp(microseconds: (days * 86_400 - offset) * 1_000_000)
        }

        func run() throws {
            let filter = try self.filter()
            let review = ConflictReview(connection: try db.connectForReading())
            let conflicts = try review.list(filter)
            switch chosenFormat {
            case .json:
                print(JSONWriter.string(.object([("conflicts", .array(conflicts.map(\.listJSON)))]), pretty: true))
            case .csv:
                FileHandle.standardOutput.write(Data(Self.csv(conflicts).utf8))
            case .text:
                guard !conflicts.isEmpty else {
                    print(filter.status == .all ? "No conflicts." : "No \(filter.status.rawValue) conflicts.")
                    return
                }
                let table = TextTable(
                    headers: ["ID", "KIND", "STATUS", "DETECTED", "AGENCIES", "APPLICATIONS", "OUTCOME", "SUMMARY"],
                    rows: conflicts.map { c in
                        [String(c.id), c.kind.rawValue, c.status.rawValue, ConflictsCommand.shortTime(c.detectedAt),
                         c.agencyCodes.joined(separator: ", "),
                         c.applicationIDs.map(ConflictsCommand.shortID).joined(separator: ", "),
                         c.outcomeText, c.summary]
                    },
                    rightAligned: [0],
                    // Fitted to the terminal: agency codes and application ids one per line, the
                    // summary cut with an ellipsis (conflicts show ID has it in full).
                    maxWidth: wide ? nil : OutputWidth.current(),
                    stacked: [4, 5], freeText: (7, .truncate))
                print(table.render())
                let plural = conflicts.count == 1 ? "conflict" : "conflicts"
                print("\n\(conflicts.count) \(plural). cardsync conflicts show ID shows one in full.")
            }
        }

        static let csvHeader = ["conflict_id", "kind", "status", "detected_at", "agency_codes", "application_ids",
                                "outcome", "resolved_at", "resolved_by", "note", "summary"]

        /// One row per conflict, written by the shared `CSVWriter` (RFC 4180, BOM, formulas neutralised).
        static func csv(_ conflicts: [ConflictRecord]) -> String {
            var csv = CSVWriter(header: csvHeader)
            for c in conflicts {
                csv.append([
                    String(c.id), c.kind.rawValue, c.status.rawValue, c.detectedAt.rfc3339,
                    c.agencyCodes.joined(separator: " "), c.applicationIDs.map(\.lowercased).joined(separator: " "),
                    c.outcome?.rawValue ?? "", c.resolvedAt?.rfc3339 ?? "", c.resolvedBy ?? "", c.note ?? "", c.summary,
                ])
            }
            return csv.text
        }
    }

    // MARK: show

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one conflict: its applications side by side, the events involved, what was applied and what not.",
            discussion: """
                Statuses are shown as words, in Chinese with --lang zh; identity and phone numbers masked.

                Examples:
                  cardsync conflicts show 12
                  cardsync conflicts show 12 --lang zh
                  cardsync conflicts show 12 --format json
                """)

        @Argument(help: "Conflict id.") var id: Int64
        @Option(help: "Language of the text: en or zh (JSON keeps the codes).") var lang: ReportLanguage = .en
        @OptionGroup var output: OutputFormatOptions
        @OptionGroup var db: DatabaseOptions

        func run() throws {
            let review = ConflictReview(connection: try db.connectForReading())
            let detail: ConflictDetail
            do {
                detail = try review.show(id)
            } catch let error as ConflictError {
                throw ConflictsCommand.failure(error)
            }
            if output.isJSON {
                print(JSONWriter.string(detail.json, pretty: true))
            } else {
                // Names and addresses from the queues: shown escaped, never acted on by the terminal.
                print(TerminalText.escapingControls(Self.text(detail, lang: lang), keepingNewlines: true))
            }
        }

        /// The text of `conflicts show` in `lang`: headings, kinds, findings, conflict and
        /// application statuses as words; the kind's code stays beside its words so that a clerk
        /// can search for it. Event types and decisions stay as typed on the command line.
        static func text(_ d: ConflictDetail, lang: ReportLanguage = .en) -> String {
            let c = d.conflict
            let w = ClerkText(lang: lang)
            let zh = lang == .zh
            var out: [String] = []
            out.append(zh ? "冲突 \(c.id)：\(w.kind(c.kind))（\(c.kind.rawValue)），\(w.conflictStatus(c.status))"
                          : "Conflict \(c.id): \(w.kind(c.kind)) (\(c.kind.rawValue)), \(w.conflictStatus(c.status))")
            var facts: [(String, String)] = [
                (w[.detected], ConflictsCommand.time(c.detectedAt)),
                (w[.agencies], c.agencyCodes.joined(separator: ", ")),
            ]
            if c.status == .resolved {
                let how = c.outcome?.rawValue ?? "?"
                facts.append((w[.resolved], zh ? "\(how)，\(ConflictsCommand.time(c.resolvedAt))，由 \(c.resolvedBy ?? "?") 决定"
                                              : "\(how) on \(ConflictsCommand.time(c.resolvedAt)) by \(c.resolvedBy ?? "?")"))
                if let note = c.note { facts.append((w[.note], note)) }
            }
            let labelWidth = facts.map { TerminalText.displayWidth($0.0) }.max() ?? 0
            let colon = zh ? "：" : ":"
            out += facts.map { "  \($0.0 + colon)\(String(repeating: " ", count: labelWidth - TerminalText.displayWidth($0.0))) \($0.1)" }

            out.append("")
            out.append(w[.whatHappened])
            out += ConflictFindings.lines(d, lang: lang).map { "  - " + $0 }

            if !d.applications.isEmpty {
                out.append("")
                out.append(w[.applicationsHeading])
                out.append(indent(applicationsTable(d, lang: lang).render()))
            }
            if !d.fields.isEmpty {
                out.append("")
                out.append(w[.fieldsMerged])
                let table = TextTable(
                    headers: [w[.field], w[.appliedColumn], w[.notApplied], w[.now], w[.winner]],
                    rows: d.fields.map { f in
                        [f.path, ConflictDetail.text(f.appliedValue), ConflictDetail.text(f.losingValue),
                         ConflictDetail.text(f.currentValue),
                         f.winner == "this_event" ? w[.lateAmendment] : w[.alreadyApplied]]
                    })
                out.append(indent(table.render()))
            }
            if !d.events.isEmpty {
                out.append("")
                out.append(w[.eventsInvolved])
                out.append(indent(eventsTable(d.events, lang: lang).render()))
            }
            if !d.history.isEmpty {
                out.append("")
                out.append(w[.eventsSent])
                out.append(indent(eventsTable(d.history, lang: lang).render()))
            }
            out.append("")
            if d.decisions.isEmpty {
                out.append(w[.nothingToDecide])
            } else {
                out.append(c.awaitsReview ? w[.reviewOnce] : w[.toResolve])
                out += d.decisions.map { "  cardsync conflicts resolve \(c.id) \($0) [--note TEXT]" }
            }
            return out.joined(separator: "\n")
        }

        static func applicationsTable(_ d: ConflictDetail, lang: ReportLanguage = .en) -> TextTable {
            let w = ClerkText(lang: lang)
            let apps = d.applications
            let headers = [w[.field]] + apps.enumerated().map { i, a in
                a.role.map { w.applicationRole($0) } ?? (lang == .zh ? "申请 \(i + 1)" : "application \(i + 1)").uppercased()
            }
            var rows: [[String]] = [
                [w[.applicationRow]] + apps.map { $0.applicationID.lowercased },
                [w[.agencyRow]] + apps.map { $0.owningAgency ?? w[.notReceived] },
                [w[.statusRow]] + apps.map { a in
                    guard let s = a.status else { return "" }
                    if s == .onHold, let back = a.heldStatus {
                        return lang == .zh ? "\(w.status(s))（恢复为\(w.status(back))）" : "\(w.status(s)) (returns to \(w.status(back)))"
                    }
                    return w.status(s)
                },
                [w[.versionRow]] + apps.map { $0.version.map(String.init) ?? "" },
                [w[.submittedAtRow]] + apps.map { ConflictsCommand.shortTime($0.submittedAt) },
            ]
            if apps.contains(where: { $0.cardNumber != nil }) {
                rows.append([w[.cardNumberRow]] + apps.map { $0.cardNumber ?? "" })
            }
            if apps.contains(where: \.known) {
                for path in ConflictDetail.formPaths {
                    let values = apps.map { $0.formText(path) }
                    // Mark the rows where the applications differ.
                    let differs = apps.count > 1 && Set(values).count > 1
                    rows.append([path + (differs ? " *" : "")] + values)
                }
            }
            return TextTable(headers: headers, rows: rows)
        }

        static func eventsTable(_ events: [ConflictDetail.Event], lang: ReportLanguage = .en) -> TextTable {
            let w = ClerkText(lang: lang)
            return TextTable(
                headers: [w[.ledger], w[.type], w[.agencyColumn], "SEQ", w[.occurred], w[.outcome], w[.applicationColumn], w[.statusColumn]],
                rows: events.map { e in
                    [e.ledgerID.map(String.init) ?? "-", e.type,
                     e.agencyCode ?? (e.type.hasPrefix("conflict_") ? w[.system] : w[.bureau]),
                     e.seq.map(String.init) ?? "", ConflictsCommand.shortTime(e.occurredAt), e.outcome,
                     ConflictsCommand.shortID(e.applicationID),
                     e.data["status"]?.stringValue.map { ApplicationStatus(rawValue: $0).map(w.status) ?? $0 } ?? ""]
                },
                rightAligned: [0, 3])
        }

        static func indent(_ text: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
        }
    }

    // MARK: resolve

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resolve a conflict with exactly one decision.",
            discussion: """
                --keep APP resolves a duplicate_application: APP returns to (or stays in) its status, \
                the other application becomes withdrawn. --accept and --apply-other resolve a \
                concurrent_amendment: keep the automatic merge, or apply the values that lost it. \
                --dismiss resolves invalid_transition, pending_expired and event_id_reuse: the event \
                stays unapplied (a pending event still applies if its prerequisite arrives).

                Each agency owning an application involved receives a conflict_resolved line in its \
                inbox on its next sync. A conflict is decided once; an automatic merge may be reviewed once.

                Examples:
                  cardsync conflicts resolve 12 --keep 0d4e25fa --note "same child, the earlier application stays"
                  cardsync conflicts resolve 13 --accept
                  cardsync conflicts resolve 14 --dismiss --note "entered twice at the counter" --by clerk_wang
                """)

        @Argument(help: "Conflict id.") var id: Int64
        @Option(help: ArgumentHelp("Keep this application (duplicate_application): its id, or the first 8 or more characters of it as `conflicts list` shows them.",
                                   valueName: "APP")) var keep: String?
        @Flag(help: "Keep the automatic merge (concurrent_amendment).") var accept = false
        @Flag(help: "Apply the losing values (concurrent_amendment).") var applyOther = false
        @Flag(help: "Leave the event unapplied (invalid_transition, pending_expired, event_id_reuse).") var dismiss = false
        @Option(help: "Why: kept with the conflict.") var note: String?
        @Option(help: "Who decided (default: the operating system user).") var by: String?
        @OptionGroup var output: OutputFormatOptions
        @OptionGroup var db: DatabaseOptions

        func validate() throws {
            let chosen = [keep != nil, accept, applyOther, dismiss].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError(chosen == 0
                    ? "choose a decision: --keep APP, --accept, --apply-other or --dismiss"
                    : "choose exactly one decision of --keep APP, --accept, --apply-other and --dismiss")
            }
            if let keep, UUID(uuidString: keep) == nil && !Self.isIDPrefix(keep) {
                throw ValidationError("--keep '\(keep)' is not an application id: give the UUID or at least its first 8 characters")
            }
            if let by, by.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("--by must not be empty")
            }
        }

        /// 8 to 36 characters of a UUID's text (hex digits and its dashes), as the list abbreviates them.
        static func isIDPrefix(_ text: String) -> Bool {
            (8...36).contains(text.utf8.count) && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0 | 0x20) || $0 == 0x2D }
        }

        /// The decision; a `--keep` prefix is matched against the conflict's own applications and
        /// must name exactly one of them.
        func decision(on connection: Connection) throws -> ConflictDecision {
            if let keep {
                if let id = UUID(uuidString: keep) { return .keep(id) }
                let applications: [UUID]
                do {
                    applications = try ConflictReview(connection: connection).show(id).applications.map(\.applicationID)
                } catch let error as ConflictError {
                    throw ConflictsCommand.failure(error)
                }
                let matches = applications.filter { $0.lowercased.hasPrefix(keep.lowercased()) }
                guard matches.count == 1 else {
                    let listed = applications.map(\.lowercased).joined(separator: ", ")
                    throw CommandFailure(matches.isEmpty ? "--keep \(keep) is none of conflict \(id)'s applications (\(listed))"
                                                         : "--keep \(keep) matches more than one application of conflict \(id)",
                                         hint: "give more of the id, or all of it")
                }
                return .keep(matches[0])
            }
            if accept { return .accept }
            if applyOther { return .applyOther }
            return .dismiss
        }

        func run() throws {
            let connection = try db.connectForReading()
            let resolver = ConflictResolver(connection: connection, logger: Logger(label: "cardsync.conflicts"))
            let decision = try decision(on: connection)
            let resolution: ConflictResolution
            do {
                resolution = try resolver.resolve(id, decision: decision, by: by ?? Self.operatingSystemUser(), note: note)
            } catch let error as ConflictError {
                throw ConflictsCommand.failure(error)
            }
            if output.isJSON {
                print(JSONWriter.string(resolution.json, pretty: true))
                return
            }
            print("Conflict \(resolution.conflictID) (\(resolution.kind.rawValue)) resolved: \(resolution.outcome.rawValue), by \(resolution.resolvedBy) on \(ConflictsCommand.time(resolution.resolvedAt)).")
            for change in resolution.changes {
                let agency = change.owningAgency ?? "not received centrally"
                let before = change.statusBefore?.rawValue ?? "-"
                let after = change.statusAfter?.rawValue ?? "-"
                let what = before == after ? "stays \(after)" : "\(before) → \(after)"
                print("  \(change.applicationID.lowercased) (\(agency)): \(what)")
            }
            print("The agencies involved receive a conflict_resolved line in their inbox on their next sync.")
        }

        /// `USER`, `LOGNAME`, the password database entry of the effective user, then `getlogin()`.
        static func operatingSystemUser() -> String {
            let env = ProcessInfo.processInfo.environment
            for key in ["USER", "LOGNAME"] {
                if let name = env[key], !name.isEmpty { return name }
            }
            if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
                let text = String(cString: name)
                if !text.isEmpty { return text }
            }
            if let login = getlogin() {
                let text = String(cString: login)
                if !text.isEmpty { return text }
            }
            return "uid \(geteuid())"
        }
    }
}
