import CardCore
import Foundation
import PostgresClient

/// `cardsync db verify`: rebuilds the projection by folding the whole ledger in ledger order,
/// writes it to temporary tables, and compares it with the live projection and with the
/// outcomes the ledger records. The live data is only read.
public struct ProjectionVerifier {
    let connection: Connection
    /// Events read per round trip while replaying.
    var pageSize = 20_000

    public init(connection: Connection) { self.connection = connection }

    public struct Report: Sendable {
        public var eventsReplayed = 0
        public var applicationsRebuilt = 0
        /// One line per difference, e.g. `application 9e2f…: status live=approved rebuilt=produced`.
        public var differences: [String] = []
        /// Differences found beyond those listed (the list is capped).
        public var moreDifferences = 0
        /// Set when the projection's watermark is behind the ledger (see `ProjectionWatermark`).
        public var lagging: ProjectionWatermark.Reading?

        public var isClean: Bool { differences.isEmpty }

        public var text: String {
            var lines = ["Replayed \(eventsReplayed) ledger events into \(applicationsRebuilt) applications."]
            if isClean {
                lines.append("The projection matches the ledger: no differences.")
            } else {
                lines.append("\(differences.count + moreDifferences) differences between the live projection and the ledger:")
                lines += differences.map { "  " + $0 }
                if moreDifferences > 0 { lines.append("  … and \(moreDifferences) more") }
            }
            return lines.joined(separator: "\n")
        }

        public var json: String {
            JSONWriter.object([
                ("clean", .bool(isClean)),
                ("events_replayed", .int(Int64(eventsReplayed))),
                ("applications_rebuilt", .int(Int64(applicationsRebuilt))),
                ("differences", .array(differences.map(JSONValue.string))),
                ("more_differences", .int(Int64(moreDifferences))),
            ], pretty: true)
        }
    }

    static let listLimit = 200

    public func verify() throws -> Report {
        // A sync commits the ledger and then, a moment later, the projection (CentralMerge); a
        // snapshot taken in between sees the projection one batch behind. Look again before
        // calling that a difference.
        // The cheap watermark check waits out such a moment before the full fold starts.
        var attempt = 0
        while true {
            attempt += 1
            if attempt < 5, try !ProjectionWatermark.read(on: connection).isCurrent {
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            let report = try verifyOnce()
            if report.lagging == nil || attempt >= 5 { return report }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    private func verifyOnce() throws -> Report {
        var report = Report()
        // Fold the ledger. Replays take the merge lock's place by reading a consistent snapshot.
        var outcomes: [(Int64, EventOutcome)] = []
        try connection.withTransaction(isolation: .repeatableRead) { conn in
            let watermark = try ProjectionWatermark.read(on: conn)
            if watermark.through != watermark.last {
                report.lagging = watermark
            }
            let (engine, events) = try LedgerReplay.fold(on: conn, pageSize: pageSize) { collect(&$0, into: &outcomes) }
            report.eventsReplayed = events

            // Temporary tables: the bureau's roles may create them (not schemas), two verifies
            // never meet, and nothing is left behind whatever happens.
            try conn.executeScript("""
                CREATE TEMP TABLE verify_applications (LIKE cardsync.applications) ON COMMIT DROP;
                CREATE TEMP TABLE verify_outcomes (ordinal bigint, ledger_id bigint, outcome text) ON COMMIT DROP;
                """)
            let apps = Array(engine.store.applications.values)
            report.applicationsRebuilt = apps.count
            try ProjectionWriter.copy(apps, into: "pg_temp.verify_applications", on: conn)
            _ = try conn.copyIn("COPY pg_temp.verify_outcomes FROM STDIN (FORMAT binary)") { writer in
                var encoder = BinaryCopyEncoder()
                for (ordinal, (id, outcome)) in outcomes.enumerated() {
                    encoder.beginRow(fieldCount: 3)
                    encoder.writeInt64(Int64(ordinal))
                    encoder.writeInt64(id)
                    encoder.writeText(outcome.rawValue)
                    try encoder.flushIfNeeded(into: writer)
                }
                encoder.writeTrailer()
                try encoder.flush(into: writer)
            }
            try compare(on: conn, into: &report)
        }
        return report
    }

    /// Keeps the outcomes decided so far and drops the rest of the engine's effects, so memory
    /// holds the state, not a copy of every event.
    private func collect(_ engine: inout LifecycleEngine, into outcomes: inout [(Int64, EventOutcome)]) {
        let effects = engine.takeEffects()
        for (event, outcome) in effects.newEvents where event.ledgerID != 0 { outcomes.append((event.ledgerID, outcome)) }
        for (id, outcome) in effects.outcomeChanges.sorted(by: { $0.key < $1.key }) { outcomes.append((id, outcome)) }
    }

    private func compare(on conn: Connection, into report: inout Report) throws {
        var found: [String] = []
        let missing = try conn.query("""
            SELECT application_id::text AS id, 'missing from the live projection' AS what FROM pg_temp.verify_applications r
            WHERE NOT EXISTS (SELECT 1 FROM cardsync.applications a WHERE a.application_id = r.application_id)
            UNION ALL
            SELECT application_id::text, 'in the live projection but not in the ledger' FROM cardsync.applications a
            WHERE NOT EXISTS (SELECT 1 FROM pg_temp.verify_applications r WHERE r.application_id = a.application_id)
              -- An application whose whole history went with an archived month stays as it was.
              AND NOT EXISTS (SELECT 1 FROM cardsync.archived_events e WHERE e.application_id = a.application_id)
            ORDER BY 1
            """)
        for row in missing {
            found.append("application \(try row.decode(String.self, column: "id")): \(try row.decode(String.self, column: "what"))")
        }
        // Column names of this program, never values: spliced as SQL text below.
        let fields = ["owning_agency", "channel", "child_id_number", "status", "held_status", "version", "form",
                      "field_stamps", "verified_documents", "card_number", "dispatched_to", "issued_by",
                      "submitted_at", "closed_at", "last_ledger_id"]
        let differing = fields.map { "CASE WHEN a.\($0) IS DISTINCT FROM r.\($0) THEN '\($0)' END" }.joined(separator: ", ")
        let rows = try conn.query("""
            SELECT a.application_id::text AS id, array_remove(ARRAY[\(unescaped: differing)], NULL) AS fields,
                   a.status AS live_status, r.status AS rebuilt_status
            FROM cardsync.applications a JOIN pg_temp.verify_applications r USING (application_id)
            WHERE (a.*) IS DISTINCT FROM (r.*)
            ORDER BY 1
            """)
        for row in rows {
            let names = try row.decode([String].self, column: "fields")
            // Personal data stays out: name the fields, show values only for the status.
            var line = "application \(try row.decode(String.self, column: "id")): differs in \(names.joined(separator: ", "))"
            if names.contains("status") {
                line += " (status live=\(try row.decode(String.self, column: "live_status")) rebuilt=\(try row.decode(String.self, column: "rebuilt_status")))"
            }
            found.append(line)
        }
        let outcomes = try conn.query("""
            SELECT l.ledger_id, l.outcome AS live, o.outcome AS rebuilt
            FROM cardsync.ledger l
            JOIN (SELECT DISTINCT ON (ledger_id) ledger_id, outcome FROM pg_temp.verify_outcomes ORDER BY ledger_id, ordinal DESC) o
              USING (ledger_id)
            WHERE l.outcome <> o.outcome
            ORDER BY l.ledger_id
            """)
        for row in outcomes {
            found.append("ledger event \(try row.decode(Int64.self, column: "ledger_id")): outcome live=\(try row.decode(String.self, column: "live")) rebuilt=\(try row.decode(String.self, column: "rebuilt"))")
        }
        if let lagging = report.lagging {
            found.insert("the projection holds the ledger's effects through ledger id \(lagging.through), but the ledger reaches \(lagging.last): a sync stopped between its ledger and projection commits; the next sync or bureau command rebuilds the projection from the ledger", at: 0)
        }
        report.differences = Array(found.prefix(Self.listLimit))
        report.moreDifferences = max(0, found.count - Self.listLimit)
    }
}
