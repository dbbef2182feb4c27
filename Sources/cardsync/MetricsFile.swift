import CardSync
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `--metrics-file PATH`: Prometheus text exposition format (version 0.0.4), for
/// node_exporter's textfile collector. docs/monitoring.md lists every metric.
///
/// Why it is built this way:
/// - The file is written to a temporary file in the same directory and renamed over PATH, so a
///   scrape never reads half a file (rename is atomic only within one file system). The
///   temporary name does not end in `.prom`, so the collector never reads it either.
/// - `sync` and `merge` are short runs (or a service that restarts), yet their counters must
///   only grow: with `carryOver`, the file's previous samples are the counters' state. A
///   counter adds this run's count to the value the file held; a series this run did not
///   produce (another agency, synced by another run into the same file; an agency whose sync
///   failed this time) keeps its previous sample. Deleting the file resets the counters, which
///   Prometheus treats as any counter reset. `status` writes a fresh snapshot instead.
/// - One process per file: two runs writing the same file at once may lose one run's counts.
struct MetricsFile {
    enum Kind: String {
        case counter, gauge
    }

    /// One metric: its samples, each a rendered series (`name{labels}`) with its value.
    struct Family {
        var name: String
        var help: String
        var kind: Kind
        var samples: [(series: String, value: Double)] = []
    }

    let path: String
    /// The previous file's samples by series, read once (a service adds to the same base).
    private let previous: [String: Double]
    private let previousOrder: [String]
    private(set) var families: [Family] = []

    /// - Parameter carryOver: keep counters growing across runs from the file's previous samples.
    init(path: String, carryOver: Bool) {
        self.path = path
        var values: [String: Double] = [:]
        var order: [String] = []
        if carryOver, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for (series, value) in Self.parseSamples(text) where values[series] == nil {
                values[series] = value
                order.append(series)
            }
        }
        previous = values
        previousOrder = order
    }

    /// Adds a sample of metric `name` (declared on first use; later help and kind are ignored).
    mutating func add(_ name: String, _ kind: Kind, _ help: String, labels: [(String, String)] = [], _ value: Double) {
        let series = name + Self.render(labels: labels)
        if let index = families.firstIndex(where: { $0.name == name }) {
            families[index].samples.append((series, value))
        } else {
            families.append(Family(name: name, help: help, kind: kind, samples: [(series, value)]))
        }
    }

    /// Declares a metric with no sample yet, so that its HELP and TYPE lines are there (and
    /// carried-over samples of it are kept).
    mutating func declare(_ name: String, _ kind: Kind, _ help: String) {
        if !families.contains(where: { $0.name == name }) { families.append(Family(name: name, help: help, kind: kind)) }
    }

    /// The exposition text: this run's samples, counters plus their previous values, then the
    /// previous samples of the same metrics that this run did not produce.
    var text: String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            var written = Set<String>()
            for (series, value) in family.samples where !written.contains(series) {
                written.insert(series)
                let total = family.kind == .counter ? value + (previous[series] ?? 0) : value
                out += "\(series) \(Self.format(total))\n"
            }
            for series in previousOrder where Self.metricName(of: series) == family.name && !written.contains(series) {
                out += "\(series) \(Self.format(previous[series] ?? 0))\n"
            }
        }
        return out
    }

    /// Writes `text` to PATH atomically: a temporary file beside it, flushed, then renamed.
    func write() throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CommandFailure("cannot write the metrics file \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        var failure: Int32 = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                break
            }
            written += n
        }
        // Flushed before the rename: after a power loss the file is the old one or the new one.
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw CommandFailure("cannot write the metrics file \(path): \(String(cString: strerror(failure)))")
        }
    }

    // MARK: The format

    /// `{a="x",b="y"}` (nothing without labels), label values escaped as the format requires:
    /// backslash, double quote and line feed. Agency codes are constrained, but kinds and other
    /// values should never be able to break a line.
    static func render(labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func escapeLabel(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integers without a fraction (counts, whole seconds), other values as Swift prints a
    /// Double (which round-trips), and the format's spellings of the special values.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded() && abs(value) < 9e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func metricName(of series: String) -> String {
        String(series.prefix { $0 != "{" && $0 != " " })
    }

    /// The samples of a file this type wrote: `series value` lines (comments skipped). The
    /// series is kept as written, which is how this type writes it again.
    static func parseSamples(_ text: String) -> [(String, Double)] {
        var samples: [(String, Double)] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            // The value is after the last space; a label value's spaces come before it.
            guard let space = line.lastIndex(of: " ") else { continue }
            let valueText = line[line.index(after: space)...]
            let value: Double? = switch valueText {
            case "+Inf": Double.infinity
            case "-Inf": -Double.infinity
            case "NaN": Double.nan
            default: Double(valueText)
            }
            if let value { samples.append((String(line[..<space]), value)) }
        }
        return samples
    }
}

// MARK: What each command writes

extension MetricsFile {
    /// `sync`: per agency, this run's counts (added to the file's counters) and its last success.
    static func writeSync(_ report: SyncReport, to path: String, finishedAt: Date = Date()) throws {
        var file = MetricsFile(path: path, carryOver: true)
        let counters: [(String, String, KeyPath<AgencySyncResult, Int>)] = [
            ("cardsync_sync_events_pushed_total", "Outbox events the centre applied for the first time (for a staging sync: merged batches first reported by it).", \.pushed),
            ("cardsync_sync_events_already_present_total", "Outbox events the centre already held (a retry, a rebuilt checkpoint).", \.alreadyPresent),
            ("cardsync_sync_events_pending_total", "Outbox events stored as pending, waiting for their prerequisite.", \.pending),
            ("cardsync_sync_events_pulled_total", "Decisions pulled into the agency's inbox.", \.pulled),
            ("cardsync_sync_lines_quarantined_total", "Outbox lines that failed the queue rules and were quarantined locally.", \.quarantined),
            ("cardsync_sync_conflicts_opened_total", "Conflicts the agency's events opened, as its syncs reported them.", \.conflictsOpened),
        ]
        for (name, help, key) in counters {
            file.declare(name, .counter, help)
            for row in report.rows { file.add(name, .counter, help, labels: [("agency", row.agencyCode)], Double(row[keyPath: key])) }
        }
        let successes = "cardsync_sync_successes_total", successesHelp = "Syncs of the agency that completed."
        let duration = "cardsync_sync_duration_seconds", durationHelp = "Duration of the agency's last successful sync."
        let last = "cardsync_sync_last_success_timestamp_seconds", lastHelp = "When the agency's last successful sync ended (Unix time)."
        let unmerged = "cardsync_sync_events_unmerged", unmergedHelp = "Events a staging sync left for the bureau's merge when it ended (0: all merged, or merged in-process)."
        file.declare(successes, .counter, successesHelp)
        file.declare(duration, .gauge, durationHelp)
        file.declare(last, .gauge, lastHelp)
        file.declare(unmerged, .gauge, unmergedHelp)
        for row in report.rows {
            let labels = [("agency", row.agencyCode)]
            file.add(successes, .counter, successesHelp, labels: labels, 1)
            file.add(duration, .gauge, durationHelp, labels: labels, row.seconds)
            file.add(last, .gauge, lastHelp, labels: labels, finishedAt.timeIntervalSince1970)
            file.add(unmerged, .gauge, unmergedHelp, labels: labels, Double(row.unmerged))
        }
        // A failed queue may not even name its agency (unreadable agency.json): counted unlabelled.
        file.add("cardsync_sync_failures_total", .counter, "Agency queues a sync run could not sync.", Double(report.failures.count))
        file.add("cardsync_sync_last_run_timestamp_seconds", .gauge, "When the last sync run writing this file ended (Unix time).",
                 finishedAt.timeIntervalSince1970)
        try file.write()
    }
}

/// `merge`: the run's totals, rewritten after every round of `--follow` (at least once per poll
/// interval), added to the counters the file held when the merge started.
final class MergeMetricsWriter {
    private let base: MetricsFile

    init(path: String) { base = MetricsFile(path: path, carryOver: true) }

    /// Writes the totals so far; a failure is logged, never stops the merge (a service should not
    /// die for its metrics, and the stale round timestamp shows the problem).
    func write(_ t: StagedBatchMerger.Totals) {
        var file = base
        let values: [(String, String, Int)] = [
            ("cardsync_merge_batches_total", "Staged batches the bureau's merge applied.", t.batches),
            ("cardsync_merge_lines_total", "Staged lines in the batches applied.", t.lines),
            ("cardsync_merge_events_accepted_total", "Staged events applied for the first time.", t.merged.accepted),
            ("cardsync_merge_events_already_present_total", "Staged events the ledger already held.", t.merged.alreadyPresent),
            ("cardsync_merge_events_pending_total", "Staged events stored as pending.", t.merged.pending),
            ("cardsync_merge_conflicts_opened_total", "Conflicts the merge opened (with pending_expired ones of its sweep).",
             t.merged.conflictsOpened + t.expiredConflicts),
            ("cardsync_merge_lines_refused_total", "Staged lines that failed the queue rules (kept in cardsync.refused_lines).", t.refused),
        ]
        for (name, help, value) in values { file.add(name, .counter, help, Double(value)) }
        file.add("cardsync_merge_last_round_timestamp_seconds", .gauge,
                 "When the merge last finished a round, with or without work (Unix time).", Date().timeIntervalSince1970)
        do {
            try file.write()
        } catch {
            printError("Warning: \(error)")
        }
    }
}
