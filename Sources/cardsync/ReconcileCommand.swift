import ArgumentParser
import CardCore
import CardSync
import Foundation
import Logging

struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare each agency queue (outbox and inbox) with what the central database holds for the agency.",
        discussion: """
            Both sides are reduced to per-bucket digests of event ids, so agreeing sides exchange only \
            kilobytes. Reported: events at the agency the centre lacks, decisions the centre delivered that \
            the inbox lacks, decisions in the inbox the centre does not know, events the centre holds that \
            the outbox lacks. With --repair the missing events are pushed again and the missing decisions \
            pulled; the rest is only reported (the bureau records decisions, the counter writes the outbox). \
            Exit 0 when the work was done (divergence found is a result); 1 when a queue could not be \
            reconciled.

            Examples:
              cardsync reconcile /srv/queues/CS-FR-001
              cardsync reconcile /srv/queues/* --repair
              cardsync reconcile /srv/queues/CS-FR-001 --format json
            """)

    @Argument(help: "Agency queue directories.") var dirs: [String]
    @Flag(help: "Push the missing events and pull the missing decisions.") var repair = false
    @OptionGroup var output: OutputFormatOptions
    @Flag(help: "Text: one table with every column and one line per finding, however wide (default: fitted to the terminal, 100 columns when not a terminal).")
    var wide = false
    @Option(help: "Seconds to wait for a sync of the same agency to finish (default: fail at once).") var wait: Double?
    @Option(help: "Event ids listed per finding (the counts are always complete).") var list = 20
    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        guard !dirs.isEmpty else { throw ValidationError("name at least one agency queue directory") }
        guard list >= 0 else { throw ValidationError("--list cannot be negative") }
    }

    func run() throws {
        let arguments = QueueArguments(dirs, command: "reconcile")
        try arguments.reportSkipped(Self.self)
        let connection = try db.connect()
        var options = ReconcileOptions()
        options.repair = repair
        options.lockWait = wait.map { .milliseconds(Int($0 * 1000)) }
        var rows: [AgencyReconcileResult] = []
        var failures: [(queue: String, message: String)] = arguments.problems.map { ($0.path, $0.failure.description) }
        let bar = ProgressBar("reconcile")
        let dirs = arguments.queues
        for (index, dir) in dirs.enumerated() {
            let queue = QueueDirectory(path: dir)
            do {
                rows.append(try AgencyReconcile(queue: queue, connection: connection, options: options, logger: Logger(label: "cardsync.reconcile")).run())
            } catch {
                failures.append((queue.path, "\(error)"))
            }
            bar.update(Double(index + 1) / Double(dirs.count), note: "\(index + 1)/\(dirs.count) agencies")
        }
        bar.finish()
        if output.isJSON {
            var doc: [String: JSONValue] = [
                "repair": .bool(repair),
                "consistent": .bool(failures.isEmpty && rows.allSatisfy(\.isConsistent)),
                "agencies": .array(rows.map { $0.json(listLimit: list) }),
            ]
            if !failures.isEmpty {
                doc["errors"] = .array(failures.map { .object(["queue": .string($0.queue), "error": .string($0.message)]) })
            }
            print(JSONWriter.string(.object(doc), pretty: true))
        } else {
            print(Self.text(rows, repair: repair, list: list, width: wide ? nil : OutputWidth.current()))
        }
        for failure in failures { printError("Error: \(failure.queue): \(failure.message)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// With `width`, the table is split into tables that each repeat the agency column, and each
    /// finding (with its event ids) is wrapped under its first line; nil: as wide as it comes.
    static func text(_ rows: [AgencyReconcileResult], repair: Bool, list: Int, width: Int? = nil) -> String {
        var headers = ["agency", "missing centrally", "missing at agency", "unknown centrally", "only central",
                       "not yet synced", "not yet pulled"]
        if repair { headers += ["pushed", "pulled"] }
        headers += ["differing buckets", "KiB received", "seconds"]
        let table = rows.map { r -> [String] in
            var cells = [r.agencyCode, "\(r.eventsMissingCentrally.count)", "\(r.decisionsMissingAtAgency.count)",
                         "\(r.decisionsUnknownCentrally.count)", "\(r.eventsOnlyCentral.count)",
                         "\(r.eventsNotYetSynced)", "\(r.decisionsNotYetPulled)"]
            if repair { cells += ["\(r.pushed?.accepted ?? 0)", "\(r.pulled)"] }
            cells += ["\(r.differingBuckets)/\(2 * r.bucketCount)", String(format: "%.1f", Double(r.bytesReceived) / 1024),
                      String(format: "%.2f", r.seconds)]
            return cells
        }
        var out = [TextTable(headers: headers, rows: table, rightAligned: Set(1..<headers.count), maxWidth: width).render()]
        for r in rows {
            var notes: [String] = []
            if r.neverSynced { notes.append("never synced (no state.json): run cardsync sync first") }
            func ids(_ items: [UUID]) -> String {
                let shown = items.prefix(list).map(\.lowercased).joined(separator: ", ")
                return items.count > list ? shown + ", … (\(items.count - list) more)" : shown
            }
            if !r.eventsMissingCentrally.isEmpty {
                notes.append("\(r.eventsMissingCentrally.count) events at the agency missing centrally"
                             + (repair ? " (pushed again)" : " (--repair pushes them)") + ": "
                             + ids(r.eventsMissingCentrally.map(\.eventID)))
            }
            if !r.decisionsMissingAtAgency.isEmpty {
                notes.append("\(r.decisionsMissingAtAgency.count) decisions missing at the agency"
                             + (repair ? " (pulled)" : " (--repair pulls them)") + ": "
                             + ids(r.decisionsMissingAtAgency.map(\.eventID)))
            }
            if !r.decisionsUnknownCentrally.isEmpty {
                notes.append("\(r.decisionsUnknownCentrally.count) decisions in the inbox unknown centrally (the central database lost them; the bureau must record them again): "
                             + ids(r.decisionsUnknownCentrally.map(\.eventID)))
            }
            if !r.eventsOnlyCentral.isEmpty {
                notes.append("\(r.eventsOnlyCentral.count) events held centrally for this agency that its outbox lacks (was the outbox restored from a backup?): "
                             + ids(r.eventsOnlyCentral))
            }
            if !r.eventsRecordedAsReuse.isEmpty {
                notes.append("\(r.eventsRecordedAsReuse.count) outbox events reuse an event_id the ledger holds for other content (event_id_reuse conflicts, see cardsync conflicts list)")
            }
            if r.isConsistent && !r.neverSynced { notes.append("agrees with the central database") }
            out.append(r.agencyCode + ":\n" + notes.map { note in
                guard let width else { return "  " + note }
                return TerminalLayout.wrapped(note, width: width - 4).enumerated()
                    .map { ($0.offset == 0 ? "  " : "    ") + $0.element }.joined(separator: "\n")
            }.joined(separator: "\n"))
        }
        return out.joined(separator: "\n\n")
    }
}
