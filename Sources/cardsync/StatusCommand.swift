import ArgumentParser
import CardCore
import CardSync
import Foundation
import Logging
import PostgresClient

/// `cardsync status`: the centre's view of every agency's sync and of the bureau's merge, for
/// an operator and for monitoring (exit 2 when something needs attention). docs/monitoring.md.
///
/// Everything is read from tables the bureau's roles may read (`cardsync_merge` holds SELECT on
/// the whole schema); ages are computed by the server, so a monitoring host with a skewed clock
/// does not make an agency look stale.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per agency: last sync, events not merged yet, open conflicts, backlog; and the merge's last activity.",
        discussion: """
            Exit 0 when every agency synced within --stale-after and no staged batch waits longer than \
            --merge-lag-after; 2 when an agency is stale or the merge is behind; 1 when the status could not be \
            read. An agency that never synced counts as stale once it has been registered longer than \
            --stale-after. Quarantined lines stay in each agency's queue: the centre does not know them \
            (cardsync queue status DIR shows them); lines the bureau's merge refused are shown.

            Examples:
              cardsync status
              cardsync status --stale-after 2h --format json
              cardsync status --metrics-file /var/lib/node_exporter/cardsync-status.prom
            """)

    @OptionGroup var output: OutputFormatOptions
    @Option(help: ArgumentHelp("An agency with no successful sync for this long is stale: 30m, 1h, 2d, or seconds.",
                               valueName: "DURATION"), transform: StatusCommand.parseDuration)
    var staleAfter: Double = 3600
    @Option(help: ArgumentHelp("The merge is behind when a staged batch has waited this long: 30s, 5m, or seconds.",
                               valueName: "DURATION"), transform: StatusCommand.parseDuration)
    var mergeLagAfter: Double = 300
    @Option(help: ArgumentHelp("Also write Prometheus metrics to this file, atomically (see docs/monitoring.md).", valueName: "PATH"))
    var metricsFile: String?
    @OptionGroup var db: DatabaseOptions

    /// `90`, `90s`, `30m`, `1h`, `2d` as seconds.
    static func parseDuration(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var factor = 1.0
        if let last = text.last, let unit = units[last] {
            number = number.dropLast()
            factor = unit
        }
        guard let value = Double(number), value.isFinite, value >= 0 else {
            throw ValidationError("'\(text)' is not a duration: give seconds or a number with s, m, h or d (30m, 1h, 2d)")
        }
        return value * factor
    }

    func run() throws {
        let connection = try db.connect()
        // An agency's role may read only its own rows, through functions: say so, not "permission denied".
        if case .agency(let code) = try SessionRole.of(connection) {
            throw CommandFailure("this database role is agency \(code)'s own: the status of every agency is the bureau's to read",
                                 hint: "run cardsync status with a role that is a member of cardsync_bureau or cardsync_merge")
        }
        // As every command that reads the projection: the backlog is not read from a stale one.
        do {
            _ = try ProjectionWatermark.repairIfBehind(on: connection, logger: Logger(label: "cardsync.status"))
        } catch {
            throw CommandFailure("the projection of the central database (\(db.summary)) is behind its ledger and could not be rebuilt: \(error)",
                                 hint: "run cardsync db verify, then sync any agency to rebuild it")
        }
        let snapshot: StatusSnapshot
        do {
            snapshot = try StatusSnapshot.read(from: connection, staleAfter: staleAfter, mergeLagAfter: mergeLagAfter)
        } catch let error as PostgresError {
            throw CommandFailure("cannot read the status from the central database (\(db.summary)): \(error)",
                                 hint: "run cardsync status with a role that is a member of cardsync_bureau or cardsync_merge")
        }
        print(output.isJSON ? JSONWriter.string(snapshot.json, pretty: true) : snapshot.text)
        if let metricsFile { try snapshot.metrics(path: metricsFile).write() }
        if snapshot.needsAttention { throw ExitCode(2) }
    }
}

/// What `status` read, with the verdicts of its thresholds.
struct StatusSnapshot {
    struct AgencyRow {
        var code: String
        var registeredAge: Double
        /// Unix time and age of the agency's last successful sync (its last completed pull).
        var lastSync: Double?
        var lastSyncAge: Double?
        var unmergedEvents = 0
        var unmergedBatches = 0
        var oldestUnmergedAge: Double?
        var conflictsByKind: [String: Int] = [:]
        var oldestConflictAge: Double?
        var refusedLines = 0
        var openApplications = 0
        var oldestOpenApplicationAge: Double?
        var stale = false

        var openConflicts: Int { conflictsByKind.values.reduce(0, +) }
    }

    var agencies: [AgencyRow] = []
    var lastMerge: Double?
    var lastMergeAge: Double?
    var unmergedBatches = 0
    var oldestUnmergedAge: Double?
    var staleAfter: Double
    var mergeLagAfter: Double
    var mergeBehind = false

    var needsAttention: Bool { mergeBehind || agencies.contains(where: \.stale) }

    static let conflictKinds = ConflictKind.allCases.map(\.rawValue)

    /// One read-only, repeatable-read transaction: every figure is of the same instant.
    static func read(from connection: Connection, staleAfter: Double, mergeLagAfter: Double) throws -> StatusSnapshot {
        try connection.withTransaction(isolation: .repeatableRead) { conn in
            try conn.executeScript("SET TRANSACTION READ ONLY")
            var snapshot = StatusSnapshot(staleAfter: staleAfter, mergeLagAfter: mergeLagAfter)
            var index: [String: Int] = [:]
            for row in try conn.query("""
                SELECT a.code, extract(epoch FROM now() - a.registered_at)::float8 AS registered_age,
                       extract(epoch FROM s.last_pull_at)::float8 AS last_sync,
                       extract(epoch FROM now() - s.last_pull_at)::float8 AS last_sync_age
                FROM cardsync.agencies a LEFT JOIN cardsync.agency_sync_state s ON s.agency_code = a.code
                ORDER BY a.code
                """) {
                let code = try row.decode(String.self, column: "code")
                index[code] = snapshot.agencies.count
                snapshot.agencies.append(AgencyRow(code: code, registeredAge: try row.decode(Double.self, column: "registered_age"),
                                                   lastSync: try row.decode(Double?.self, column: "last_sync"),
                                                   lastSyncAge: try row.decode(Double?.self, column: "last_sync_age")))
            }
            for row in try conn.query("""
                SELECT agency_code, sum(line_count)::int8 AS events, count(*)::int8 AS batches,
                       extract(epoch FROM now() - min(staged_at))::float8 AS oldest
                FROM cardsync.staged_batches WHERE merged_at IS NULL GROUP BY agency_code
                """) {
                guard let i = index[try row.decode(String.self, column: "agency_code")] else { continue }
                snapshot.agencies[i].unmergedEvents = Int(try row.decode(Int64.self, column: "events"))
                snapshot.agencies[i].unmergedBatches = Int(try row.decode(Int64.self, column: "batches"))
                snapshot.agencies[i].oldestUnmergedAge = try row.decode(Double?.self, column: "oldest")
            }
            // A conflict names every agency it concerns (two agencies' duplicate names both).
            for row in try conn.query("""
                SELECT code, c.kind, count(*)::int8 AS open, extract(epoch FROM now() - min(c.detected_at))::float8 AS oldest
                FROM cardsync.conflicts c, unnest(c.agency_codes) AS code
                WHERE c.status = 'open' GROUP BY code, c.kind
                """) {
                guard let i = index[try row.decode(String.self, column: "code")] else { continue }
                snapshot.agencies[i].conflictsByKind[try row.decode(String.self, column: "kind")] = Int(try row.decode(Int64.self, column: "open"))
                let oldest = try row.decode(Double.self, column: "oldest")
                snapshot.agencies[i].oldestConflictAge = max(snapshot.agencies[i].oldestConflictAge ?? 0, oldest)
            }
            for row in try conn.query("SELECT agency_code, count(*)::int8 AS refused FROM cardsync.refused_lines GROUP BY agency_code") {
                guard let i = index[try row.decode(String.self, column: "agency_code")] else { continue }
                snapshot.agencies[i].refusedLines = Int(try row.decode(Int64.self, column: "refused"))
            }
            // Open is not closed: on hold counts too (it waits for a person).
            for row in try conn.query("""
                SELECT owning_agency, count(*)::int8 AS open, extract(epoch FROM now() - min(submitted_at))::float8 AS oldest
                FROM cardsync.applications WHERE closed_at IS NULL GROUP BY owning_agency
                """) {
                guard let i = index[try row.decode(String.self, column: "owning_agency")] else { continue }
                snapshot.agencies[i].openApplications = Int(try row.decode(Int64.self, column: "open"))
                snapshot.agencies[i].oldestOpenApplicationAge = try row.decode(Double?.self, column: "oldest")
            }
            if let row = try conn.query("""
                SELECT extract(epoch FROM max(merged_at))::float8 AS last_merge,
                       extract(epoch FROM now() - max(merged_at))::float8 AS last_merge_age,
                       (count(*) FILTER (WHERE merged_at IS NULL))::int8 AS unmerged,
                       extract(epoch FROM now() - min(staged_at) FILTER (WHERE merged_at IS NULL))::float8 AS oldest
                FROM cardsync.staged_batches
                """).first {
                snapshot.lastMerge = try row.decode(Double?.self, column: "last_merge")
                snapshot.lastMergeAge = try row.decode(Double?.self, column: "last_merge_age")
                snapshot.unmergedBatches = Int(try row.decode(Int64.self, column: "unmerged"))
                snapshot.oldestUnmergedAge = try row.decode(Double?.self, column: "oldest")
            }
            for i in snapshot.agencies.indices {
                let a = snapshot.agencies[i]
                // Never synced: stale only once it had the whole threshold to make its first sync.
                snapshot.agencies[i].stale = (a.lastSyncAge ?? a.registeredAge) > staleAfter
            }
            snapshot.mergeBehind = (snapshot.oldestUnmergedAge ?? 0) > mergeLagAfter
            return snapshot
        }
    }

    // MARK: Output

    var json: JSONValue {
        func number(_ v: Double?) -> JSONValue { v.map { .double(($0 * 1000).rounded() / 1000) } ?? .null }
        func time(_ v: Double?) -> JSONValue { v.map { .string(Self.iso8601($0)) } ?? .null }
        let rows: [JSONValue] = agencies.map { a in
            .object([
                "agency_code": .string(a.code),
                "last_sync_at": time(a.lastSync),
                "last_sync_age_seconds": number(a.lastSyncAge),
                "stale": .bool(a.stale),
                "unmerged_events": .int(Int64(a.unmergedEvents)),
                "unmerged_batches": .int(Int64(a.unmergedBatches)),
                "oldest_unmerged_age_seconds": number(a.oldestUnmergedAge),
                "open_conflicts": .object(Dictionary(uniqueKeysWithValues: Self.conflictKinds.map { ($0, JSONValue.int(Int64(a.conflictsByKind[$0] ?? 0))) })),
                "oldest_open_conflict_age_seconds": number(a.oldestConflictAge),
                // Not known centrally: quarantined lines never leave the agency's queue.
                "quarantined_lines": .null,
                "refused_lines": .int(Int64(a.refusedLines)),
                "open_applications": .int(Int64(a.openApplications)),
                "oldest_open_application_age_seconds": number(a.oldestOpenApplicationAge),
            ])
        }
        return .object([
            "agencies": .array(rows),
            "merge": .object([
                "last_merged_at": time(lastMerge),
                "last_merged_age_seconds": number(lastMergeAge),
                "unmerged_batches": .int(Int64(unmergedBatches)),
                "oldest_unmerged_age_seconds": number(oldestUnmergedAge),
                "behind": .bool(mergeBehind),
            ]),
            "stale_after_seconds": number(staleAfter),
            "merge_lag_after_seconds": number(mergeLagAfter),
            "stale_agencies": .int(Int64(agencies.filter(\.stale).count)),
        ])
    }

    /// A table at most 100 columns wide: agency codes are at most 32 characters, conflicts
    /// are one cell (`total (kind:n …)` would not fit, so kinds are listed under the table).
    var text: String {
        let headers = ["agency", "last sync", "unmerged", "oldest", "conflicts", "backlog", "oldest", "state"]
        let rows = agencies.map { a -> [String] in
            [a.code, a.lastSyncAge.map { Self.age($0) + " ago" } ?? "never",
             "\(a.unmergedEvents)", a.oldestUnmergedAge.map(Self.age) ?? "-",
             "\(a.openConflicts)", "\(a.openApplications)", a.oldestOpenApplicationAge.map(Self.age) ?? "-",
             a.stale ? "STALE" : "ok"]
        }
        var text = agencies.isEmpty ? "No agencies registered." : TextTable(headers: headers, rows: rows, rightAligned: [2, 3, 4, 5, 6], maxWidth: 100).render()
        for a in agencies where a.openConflicts > 0 {
            let kinds = Self.conflictKinds.compactMap { k in a.conflictsByKind[k].map { "\(k) \($0)" } }
            text += "\n" + Self.wrap("\(a.code) open conflicts: ", kinds + ["(oldest \(Self.age(a.oldestConflictAge ?? 0)))"])
        }
        for a in agencies where a.refusedLines > 0 {
            text += "\n\(a.code): \(a.refusedLines) staged line(s) refused by the merge (cardsync.refused_lines)"
        }
        text += "\nunmerged: events staged but not merged; backlog: open applications; oldest: age of the oldest."
        text += "\nQuarantined lines: not known centrally (they stay in each queue; cardsync queue status DIR)."
        let merge = lastMergeAge.map { "last merged a batch \(Self.age($0)) ago" } ?? "has merged no staged batch yet"
        text += "\nMerge: \(merge); \(unmergedBatches) batch(es) waiting"
            + (oldestUnmergedAge.map { ", the oldest for \(Self.age($0))" } ?? "") + (mergeBehind ? " — BEHIND" : "") + "."
        let stale = agencies.filter(\.stale).count
        text += "\nStale after \(Self.age(staleAfter)): \(stale) of \(agencies.count) agenc\(agencies.count == 1 ? "y" : "ies") stale."
        return text
    }

    /// `head` then the items joined by ", ", continued on indented lines within 100 columns.
    static func wrap(_ head: String, _ items: [String]) -> String {
        var lines = [head]
        for (i, item) in items.enumerated() {
            let piece = item + (i < items.count - 2 ? "," : "")
            let sep = lines[lines.count - 1].hasSuffix(" ") ? "" : " "
            if lines[lines.count - 1].count + sep.count + piece.count > 100 {
                lines.append("    " + piece)
            } else {
                lines[lines.count - 1] += sep + piece
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `45s`, `12m`, `3h`, `2d` (two units below a day: `1h05m`).
    static func age(_ seconds: Double) -> String {
        let s = Int(max(0, seconds).rounded(.down))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + (s % 60 == 0 ? "" : String(format: "%02ds", s % 60)) }
        if s < 86_400 { return "\(s / 3600)h" + (s % 3600 / 60 == 0 ? "" : String(format: "%02dm", s % 3600 / 60)) }
        return "\(s / 86_400)d" + (s % 86_400 / 3600 == 0 ? "" : "\(s % 86_400 / 3600)h")
    }

    static func iso8601(_ unix: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: unix))
    }

    /// The snapshot as gauges (a fresh file each time: a conflict resolved is a zero, not a
    /// leftover from the last run).
    func metrics(path: String) -> MetricsFile {
        var f = MetricsFile(path: path, carryOver: false)
        let names: [(String, String)] = [
            ("cardsync_agency_last_sync_timestamp_seconds", "When the agency's last successful sync ended, as the centre recorded it (Unix time; absent before its first)."),
            ("cardsync_agency_stale", "1 when the agency had no successful sync within status --stale-after (never synced: registered longer than that)."),
            ("cardsync_unmerged_events", "Events the agency staged that the bureau's merge has not applied yet."),
            ("cardsync_unmerged_oldest_age_seconds", "Age of the agency's oldest staged batch not merged yet (0 when none)."),
            ("cardsync_conflicts_open", "Open conflicts concerning the agency, by kind."),
            ("cardsync_conflicts_open_oldest_age_seconds", "Age of the oldest open conflict concerning the agency (0 when none)."),
            ("cardsync_merge_refused_lines", "Staged lines of the agency that the merge refused (cardsync.refused_lines)."),
            ("cardsync_applications_open", "The agency's open applications (not issued, rejected or withdrawn): its backlog."),
            ("cardsync_applications_open_oldest_age_seconds", "Age of the agency's oldest open application since submission (0 when none)."),
        ]
        for (name, help) in names { f.declare(name, .gauge, help) }
        func help(_ name: String) -> String { names.first { $0.0 == name }?.1 ?? "" }
        for a in agencies {
            let l = [("agency", a.code)]
            if let last = a.lastSync { f.add(names[0].0, .gauge, help(names[0].0), labels: l, last) }
            f.add("cardsync_agency_stale", .gauge, "", labels: l, a.stale ? 1 : 0)
            f.add("cardsync_unmerged_events", .gauge, "", labels: l, Double(a.unmergedEvents))
            f.add("cardsync_unmerged_oldest_age_seconds", .gauge, "", labels: l, a.oldestUnmergedAge ?? 0)
            for kind in Self.conflictKinds {
                f.add("cardsync_conflicts_open", .gauge, "", labels: l + [("kind", kind)], Double(a.conflictsByKind[kind] ?? 0))
            }
            f.add("cardsync_conflicts_open_oldest_age_seconds", .gauge, "", labels: l, a.oldestConflictAge ?? 0)
            f.add("cardsync_merge_refused_lines", .gauge, "", labels: l, Double(a.refusedLines))
            f.add("cardsync_applications_open", .gauge, "", labels: l, Double(a.openApplications))
            f.add("cardsync_applications_open_oldest_age_seconds", .gauge, "", labels: l, a.oldestOpenApplicationAge ?? 0)
        }
        if let lastMerge {
            f.add("cardsync_merge_last_activity_timestamp_seconds", .gauge,
                  "When the bureau's merge last applied a staged batch (Unix time; absent before the first).", lastMerge)
        }
        f.add("cardsync_unmerged_batches", .gauge, "Staged batches of all agencies not merged yet.", Double(unmergedBatches))
        f.add("cardsync_merge_lag_seconds", .gauge, "Age of the oldest staged batch not merged yet (0 when none).", oldestUnmergedAge ?? 0)
        f.add("cardsync_merge_behind", .gauge, "1 when a staged batch waited longer than status --merge-lag-after.", mergeBehind ? 1 : 0)
        f.add("cardsync_status_last_run_timestamp_seconds", .gauge, "When cardsync status last wrote this file (Unix time).",
              Date().timeIntervalSince1970)
        return f
    }
}
