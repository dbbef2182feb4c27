import ArgumentParser
import CardCore
import CardSync
import Foundation
import Logging
import PostgresClient

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Push new outbox events to the central database, then pull decisions into the inbox, for each agency queue.",
        discussion: """
            Exit 0 when the work was done (quarantined lines and new conflicts are results); 1 when an agency could \
            not be synced (database unreachable, queue unreadable, lock held elsewhere); with --strict, 3 when lines \
            were quarantined or conflicts opened. Files among the paths (a pattern such as /srv/queues/* also \
            matches files kept beside the queues) are skipped with a note on stderr; a directory that is not a \
            queue is an error.

            Examples:
              cardsync sync /srv/queues/CS-FR-001
              cardsync sync /srv/queues/* --jobs 4
              cardsync sync /srv/queues/CS-FR-001 --retry 5 --format json
              cardsync sync /srv/queues/* --strict --metrics-file /var/lib/node_exporter/cardsync.prom
            """)

    @Argument(help: "Agency queue directories.") var dirs: [String]
    @Option(help: "Agencies synced at once, each on two connections of its own (one writes the projection).") var jobs = 1
    @OptionGroup var output: OutputFormatOptions
    @Flag(help: "Exit 3 when lines were quarantined or conflicts opened.") var strict = false
    @Option(help: "Seconds to wait for another sync of the same agency to finish (default: fail at once).") var wait: Double?
    @Option(help: "Retries, with doubling backoff, when the database connection fails or breaks.") var retry = 0
    @Option(help: "Days a pending event may wait for its prerequisite before a pending_expired conflict opens.") var pendingHorizonDays: Double = 14
    @Option(help: "Outbox lines per central transaction.") var batchSize = 10_000
    @Flag(help: "The agency moved to this central database: sync queues that synced with another one before, pushing every outbox event.")
    var newCentre = false
    @Option(help: ArgumentHelp("Seconds a sync with an agency's own role waits for the bureau's merge of its events before it pulls.",
                               discussion: "What is not merged by then is stored centrally and reported as unmerged; 0 does not wait."))
    var mergeWait: Double = 10
    @Option(help: ArgumentHelp("Also write Prometheus metrics to this file, atomically (see docs/monitoring.md).", valueName: "PATH"))
    var metricsFile: String?
    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        guard !dirs.isEmpty else { throw ValidationError("name at least one agency queue directory") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard pendingHorizonDays >= 0 else { throw ValidationError("--pending-horizon-days cannot be negative") }
        guard mergeWait >= 0 && mergeWait <= 3600 else { throw ValidationError("--merge-wait must be between 0 and 3600 seconds") }
    }

    func run() throws {
        let arguments = QueueArguments(dirs, command: "sync")
        try arguments.reportSkipped(Self.self)
        // Connect once up front: a missing database is one clear error, not one per agency.
        // `--retry` covers this first connection too (a server restarting, a link coming back).
        var attempt = 0
        while true {
            do {
                _ = try db.connect()
                break
            } catch let failure as CommandFailure where failure.isRetryable && attempt < retry {
                attempt += 1
                let delay = SyncRunner.retryDelay(attempt: attempt)
                Logger(label: "cardsync.sync").warning("cannot reach the central database, retrying",
                                                       metadata: ["attempt": "\(attempt)", "delay_s": "\(delay)", "error": "\(failure.message)"])
                Thread.sleep(forTimeInterval: delay)
            }
        }
        var options = SyncOptions()
        options.batchSize = batchSize
        options.pendingHorizonSeconds = Int64(pendingHorizonDays * 86_400)
        options.lockWait = wait.map { .milliseconds(Int($0 * 1000)) }
        options.acceptNewCentre = newCentre
        options.mergeWait = .milliseconds(Int(mergeWait * 1000))
        let selection = db.selection
        let runner = SyncRunner(connect: { try selection.connect(logger: Logger(label: "cardsync.database"), migrate: false) }, options: options, retries: retry, logger: Logger(label: "cardsync.sync"))
        let queues = arguments.queues.map { QueueDirectory(path: $0) }
        let bar = ProgressBar("sync")
        let started = ContinuousClock.now
        let results = queues.isEmpty ? [] : runner.run(queues, jobs: jobs) { finished, done, total in
            bar.update(total > 0 ? Double(done) / Double(total) : 0, note: "\(finished)/\(queues.count) agencies")
        }
        bar.finish()
        var report = SyncReport(queues: queues, results: results, elapsed: (ContinuousClock.now - started).seconds)
        // Paths that are not queues fail like a queue that could not be synced: listed, exit 1.
        report.failures += arguments.problems.map { ($0.path, $0.failure.description) }
        if output.isJSON {
            print(JSONWriter.string(report.json, pretty: true))
        } else {
            print(report.text)
        }
        if let metricsFile { try MetricsFile.writeSync(report, to: metricsFile) }
        for failure in report.failures { printError("Error: \(failure.queue): \(failure.message)") }
        if !report.failures.isEmpty { throw ExitCode(1) }
        if strict && (report.totals.quarantined > 0 || report.totals.conflictsOpened > 0) { throw ExitCode(3) }
    }
}

/// The sync summary, as text and as the JSON document of docs/cli.md.
///
/// A row's `seconds` is that agency's own sync; the totals' `seconds` is the elapsed time of the
/// whole run (with `--jobs N` agencies overlap, so it is neither their sum nor the slowest one).
struct SyncReport {
    var rows: [AgencySyncResult] = []
    var failures: [(queue: String, message: String)] = []
    var totals = AgencySyncResult(agencyCode: "")

    init(queues: [QueueDirectory], results: [Result<AgencySyncResult, Error>], elapsed: Double) {
        for (queue, result) in zip(queues, results) {
            switch result {
            case .success(let row): rows.append(row)
            case .failure(let error): failures.append((queue.path, "\(error)"))
            }
        }
        for row in rows {
            totals.pushed += row.pushed
            totals.alreadyPresent += row.alreadyPresent
            totals.quarantined += row.quarantined
            totals.pending += row.pending
            totals.conflictsOpened += row.conflictsOpened
            totals.pulled += row.pulled
            totals.unmerged += row.unmerged
            totals.staged = totals.staged || row.staged
        }
        totals.seconds = elapsed
    }

    var json: JSONValue {
        var totalsJSON = totals.json.objectValue ?? [:]
        totalsJSON["agency_code"] = nil
        totalsJSON["agencies"] = .int(Int64(rows.count))
        var doc: [String: JSONValue] = ["agencies": .array(rows.map(\.json)), "totals": .object(totalsJSON)]
        if !failures.isEmpty {
            doc["errors"] = .array(failures.map { .object(["queue": .string($0.queue), "error": .string($0.message)]) })
        }
        return .object(doc)
    }

    var text: String {
        let headers = ["agency", "pushed", "already present", "quarantined", "pending", "conflicts", "pulled", "seconds"]
        func cells(_ r: AgencySyncResult, _ name: String) -> [String] {
            [name, "\(r.pushed)", "\(r.alreadyPresent)", "\(r.quarantined)", "\(r.pending)", "\(r.conflictsOpened)",
             "\(r.pulled)", String(format: "%.2f", r.seconds)]
        }
        var table = rows.map { cells($0, $0.agencyCode) }
        if rows.count > 1 { table.append(cells(totals, "total")) }
        var text = TextTable(headers: headers, rows: table, rightAligned: Set(1..<headers.count)).render()
        if rows.count > 1 {
            text += "\nseconds: each agency's own sync; the total is the elapsed time of the whole run."
        }
        if totals.unmerged > 0 {
            // Only a sync with an agency's own role stages; its events are safe centrally.
            text += "\n\(totals.unmerged) event(s) are stored centrally and wait for the bureau's merge (cardsync merge); "
                + "their conflicts and pending counts appear in a later sync."
        }
        return text
    }
}
