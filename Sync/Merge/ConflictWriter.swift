import CardCore
import Foundation
import PostgresClient

/// Stores detected conflicts and closes `pending_expired` conflicts whose event finally applied.
enum ConflictWriter {
    /// Inserts a batch's conflicts with their event lists complete: duplicates name the
    /// submissions of their applications, field merges the event ids of the ledger rows they
    /// refer to. Called after the batch's ledger rows are written, so those are found too.
    static func insert(_ drafts: [ConflictDraft], ids: [Int64], namingSubmissions: Set<Int>, on conn: Connection) throws {
        guard !drafts.isEmpty else { return }
        var drafts = drafts
        let submissions = try submittedEvents(of: Set(namingSubmissions.flatMap { drafts[$0].applicationIDs }), on: conn)
        for index in namingSubmissions {
            let named = drafts[index].applicationIDs.flatMap { submissions[$0] ?? [] }.sorted { $0.ledgerID < $1.ledgerID }
            guard !named.isEmpty else { continue }
            drafts[index].eventIDs = named.map(\.eventID)
            drafts[index].ledgerIDs = named.map(\.ledgerID)
        }
        let amendments = drafts.indices.filter { drafts[$0].kind == .concurrentAmendment }
        let eventIDs = try eventIDs(ofLedgerRows: Set(amendments.flatMap { drafts[$0].ledgerIDs }), on: conn)
        for index in amendments {
            let named = drafts[index].ledgerIDs.sorted().compactMap { eventIDs[$0] }
            if !named.isEmpty { drafts[index].eventIDs = named }
        }

        // One statement for the whole batch (a bulk sync opens thousands of duplicate
        // conflicts): the rows travel as one JSON parameter, arrays and all.
        let rows: [JSONValue] = drafts.enumerated().map { index, draft in
            var row: [String: JSONValue] = [
                "conflict_id": .int(ids[index]),
                "kind": .string(draft.kind.rawValue),
                "status": .string(draft.isOpen ? "open" : "resolved"),
                "application_ids": .array(draft.applicationIDs.map { .string($0.lowercased) }),
                "agency_codes": .array(draft.agencyCodes.map(JSONValue.string)),
                "event_ids": .array(draft.eventIDs.map { .string($0.lowercased) }),
                "ledger_ids": .array(draft.ledgerIDs.map(JSONValue.int)),
                "detail": draft.detail,
            ]
            if let outcome = draft.outcome { row["outcome"] = .string(outcome.rawValue) }
            return .object(row)
        }
        try conn.execute("""
            INSERT INTO cardsync.conflicts (conflict_id, kind, status, application_ids, agency_codes, event_ids,
                                            ledger_ids, detail, resolved_at, resolved_by, outcome)
            SELECT r.conflict_id, r.kind, r.status, r.application_ids, r.agency_codes, r.event_ids, r.ledger_ids,
                   r.detail, CASE WHEN r.status = 'resolved' THEN now() END,
                   CASE WHEN r.status = 'resolved' THEN 'cardsync' END, r.outcome
            FROM jsonb_to_recordset($1::jsonb) AS r(conflict_id int8, kind text, status text, application_ids uuid[],
                                                   agency_codes text[], event_ids uuid[], ledger_ids int8[],
                                                   detail jsonb, outcome text)
            ORDER BY r.conflict_id
            """, [.json(JSONWriter.string(.array(rows)))])
    }

    /// The `submitted` events of the given applications.
    private static func submittedEvents(of apps: Set<UUID>, on conn: Connection) throws -> [UUID: [(ledgerID: Int64, eventID: UUID)]] {
        guard !apps.isEmpty else { return [:] }
        let rows = try conn.query("""
            SELECT application_id, ledger_id, event_id FROM cardsync.ledger
            WHERE application_id = ANY($1::uuid[]) AND type = 'submitted'
            """, [.uuidArray(Array(apps))])
        var found: [UUID: [(ledgerID: Int64, eventID: UUID)]] = [:]
        for row in rows {
            found[try row.decode(UUID.self, column: "application_id"), default: []].append(
                (try row.decode(Int64.self, column: "ledger_id"), try row.decode(UUID.self, column: "event_id")))
        }
        return found
    }

    private static func eventIDs(ofLedgerRows ids: Set<Int64>, on conn: Connection) throws -> [Int64: UUID] {
        guard !ids.isEmpty else { return [:] }
        let rows = try conn.query("SELECT ledger_id, event_id FROM cardsync.ledger WHERE ledger_id = ANY($1::int8[])",
                                  [.int64Array(Array(ids))])
        var found: [Int64: UUID] = [:]
        for row in rows { found[try row.decode(Int64.self, column: "ledger_id")] = try row.decode(UUID.self, column: "event_id") }
        return found
    }

    /// A pending event that expired and then applied: its conflict resolves itself.
    static func resolveExpired(releasedLedgerIDs: [Int64], on conn: Connection) throws {
        guard !releasedLedgerIDs.isEmpty else { return }
        try conn.execute("""
            UPDATE cardsync.conflicts SET status = 'resolved', outcome = 'applied', resolved_at = now(),
                   resolved_by = 'cardsync', note = 'the prerequisite arrived and the event applied'
            WHERE kind = 'pending_expired' AND status = 'open' AND ledger_ids && $1::int8[]
            """, [.int64Array(releasedLedgerIDs)])
    }

    /// A pending event that expired and, re-checked when its prerequisite arrived, can never
    /// apply: its `pending_expired` conflict closes, and the new `invalid_transition` conflict
    /// carries the decision (one event, one open question).
    static func closeExpired(refusedLedgerIDs: [Int64], on conn: Connection) throws {
        guard !refusedLedgerIDs.isEmpty else { return }
        try conn.execute("""
            UPDATE cardsync.conflicts SET status = 'resolved', outcome = 'dismiss', resolved_at = now(),
                   resolved_by = 'cardsync',
                   note = 're-checked when its prerequisite arrived: it can never apply (see the invalid_transition conflict)'
            WHERE kind = 'pending_expired' AND status = 'open' AND ledger_ids && $1::int8[]
            """, [.int64Array(refusedLedgerIDs)])
    }

    /// Opens a `pending_expired` conflict for each event pending longer than the horizon that
    /// has none yet. Must run under the merge lock (it hands out conflict ids).
    @discardableResult
    static func openExpired(horizonSeconds: Int64, on conn: Connection) throws -> Int {
        try conn.execute("""
            INSERT INTO cardsync.conflicts (conflict_id, kind, status, application_ids, agency_codes, event_ids, ledger_ids, detail)
            SELECT nextval('cardsync.conflict_id_seq'), 'pending_expired', 'open', ARRAY[l.application_id],
                   ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[l.agency_code, a.owning_agency]) AS x WHERE x IS NOT NULL),
                   ARRAY[l.event_id], ARRAY[l.ledger_id],
                   jsonb_build_object('event_type', l.type, 'recorded_at', l.recorded_at,
                                      'waited_seconds', floor(extract(epoch FROM now() - l.recorded_at)),
                                      'horizon_seconds', $1::int8,
                                      'applied', false,
                                      'reason', 'the event waited longer than the pending horizon for its prerequisite')
            FROM (SELECT * FROM cardsync.ledger WHERE outcome = 'pending'
                  AND recorded_at <= now() - make_interval(secs => $1::int8) ORDER BY ledger_id) l
            LEFT JOIN cardsync.applications a ON a.application_id = l.application_id
            WHERE NOT EXISTS (SELECT 1 FROM cardsync.conflicts c
                              WHERE c.kind = 'pending_expired' AND c.ledger_ids @> ARRAY[l.ledger_id])
            """, [.int64(horizonSeconds)])
    }
}
