import ArgumentParser
import CardCore
import CardSync
import Dispatch
import Foundation
import Synchronization
import Logging
import PostgresClient

/// `cardsync merge`: the bureau applies the batches agencies' own roles staged.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Apply the event batches agencies staged with their own database roles (run by the bureau).",
        discussion: """
            Each staged batch is applied exactly once, in the order it was staged, with the same rules as a sync \
            that merges in-process; then pending events past the horizon are swept. Run it with a role of the \
            bureau (a member of cardsync_merge or cardsync_bureau).

            With --follow it runs as a service: woken by the agencies' syncs (LISTEN cardsync_staged) and, should \
            a notification be missed, every --poll-interval seconds; SIGTERM or Ctrl-C stops it after the batch in \
            hand, exit 0.

            Examples:
              cardsync merge --database "$BUREAU_URL"
              cardsync merge --follow --database "$BUREAU_URL"
            """)

    @Flag(help: "Keep running and merge batches as they are staged.") var follow = false
    /// `--format json` / `--json`: one JSON document on stdout, at the end (also with --follow).
    @OptionGroup var output: OutputFormatOptions
    @Option(help: "With --follow: seconds between checks when no notification arrives.") var pollInterval: Double = 5
    @Option(help: "Days a pending event may wait for its prerequisite before a pending_expired conflict opens.")
    var pendingHorizonDays: Double = 14
    @Option(help: ArgumentHelp("Also write Prometheus metrics to this file, atomically; with --follow after every round.", valueName: "PATH"))
    var metricsFile: String?
    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        guard pollInterval >= 0.05 && pollInterval <= 3600 else { throw ValidationError("--poll-interval must be between 0.05 and 3600 seconds") }
        guard pendingHorizonDays >= 0 else { throw ValidationError("--pending-horizon-days cannot be negative") }
    }

    func run() throws {
        let logger = Logger(label: "cardsync.merge")
        let stop = StopSignal.install()
        var totals = StagedBatchMerger.Totals()
        var failures = 0
        let metrics = metricsFile.map(MergeMetricsWriter.init(path:))
        while true {
            do {
                // After a lost connection, connect without the friendly wrapping, so that a server
                // still starting up stays a retryable PostgresError and the service keeps trying.
                let connection = failures == 0 ? try db.connect(logger: logger)
                                               : try db.selection.connect(logger: logger, migrate: false)
                try requireBureauRole(connection)
                let projection = try db.selection.connect(logger: logger, migrate: false)
                let listener = follow ? try db.selection.connect(logger: logger, migrate: false) : nil
                try listener?.listen("cardsync_staged")
                let merger = StagedBatchMerger(connection: connection, projection: projection, logger: logger,
                                               pendingHorizonSeconds: Int64(pendingHorizonDays * 86_400))
                failures = 0
                while true {
                    let round = try merger.mergeAll(shouldStop: { stop.requested })
                    totals = totals + round
                    metrics?.write(totals)
                    if round.batches > 0 && follow {
                        logger.notice("merged staged batches", metadata: ["batches": "\(round.batches)", "lines": "\(round.lines)"])
                    }
                    guard let listener, !stop.requested else { break }
                    try waitForWork(on: listener, stop: stop)
                    if stop.requested { break }
                }
                break
            } catch let error as PostgresError where follow && error.isRetryable && !stop.requested {
                // A service outlives a database restart: reconnect with doubling backoff.
                failures += 1
                let delay = min(60.0, pow(2.0, Double(failures - 1)))
                logger.error("lost the central database; reconnecting", metadata: ["error": "\(error)", "delay_s": "\(delay)"])
                Thread.sleep(forTimeInterval: delay)
            } catch let error as SyncError {
                throw CommandFailure(error.message)
            }
        }
        if output.isJSON {
            print(JSONWriter.string(totals.json, pretty: true))
        } else {
            print(Self.describe(totals))
        }
    }

    /// Sleeps until an agency stages something, the poll interval passes, or a stop is asked for.
    private func waitForWork(on listener: Connection, stop: StopSignal) throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(pollInterval * 1000))
        while !stop.requested && ContinuousClock.now < deadline {
            // Short slices, so that a stop is noticed within a quarter second.
            if try !listener.waitForNotifications(timeout: .milliseconds(250)).isEmpty { return }
        }
    }

    /// The merge writes the ledger: an agency's role cannot, and should hear why at once.
    private func requireBureauRole(_ connection: Connection) throws {
        if case .agency(let code) = try SessionRole.of(connection) {
            throw CommandFailure("this database role is agency \(code)'s own: only the bureau merges staged batches",
                                 hint: "run cardsync merge with a role that is a member of cardsync_merge or cardsync_bureau")
        }
    }

    static func describe(_ t: StagedBatchMerger.Totals) -> String {
        if t.batches == 0 {
            return "No staged batches to merge." + (t.expiredConflicts > 0 ? " Opened \(t.expiredConflicts) pending_expired conflict(s)." : "")
        }
        var text = "Merged \(t.batches) staged batch(es), \(t.lines) line(s): \(t.merged.accepted) new, "
            + "\(t.merged.alreadyPresent) already present, \(t.merged.pending) pending, "
            + "\(t.merged.conflictsOpened + t.expiredConflicts) conflict(s) opened."
        if t.refused > 0 {
            text += "\n\(t.refused) staged line(s) failed the queue rules and were not applied; they are kept in cardsync.refused_lines."
        }
        return text
    }
}

/// SIGTERM and SIGINT, turned into a flag the merge loop reads between batches.
final class StopSignal: Sendable {
    /// Raised by the signal handlers, read by the merge loop.
    private final class Flag: Sendable { let raised = Mutex(false) }
    private let flag: Flag
    /// Only kept alive, never read or changed after `init`, so nothing about it can race.
    private nonisolated(unsafe) let sources: [DispatchSourceSignal]

    private init(flag: Flag, sources: [DispatchSourceSignal]) {
        self.flag = flag
        self.sources = sources
    }

    var requested: Bool { flag.raised.withLock { $0 } }

    static func install() -> StopSignal {
        let flag = Flag()
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.raised.withLock { $0 = true } }
            source.resume()
            sources.append(source)
        }
        return StopSignal(flag: flag, sources: sources)
    }
}
