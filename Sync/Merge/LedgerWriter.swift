import CardCore
import Foundation
import Logging
import PostgresClient

/// Appends rows to the ledger with binary COPY, and moves pending events to their outcome.
enum LedgerWriter {
    static let copySQL: PostgresQuery = """
        COPY cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq,
                              occurred_at, occurred_offset, data, outcome, awaits_application)
        FROM STDIN (FORMAT binary)
        """

    /// `applicationExists` says whether the centre has the event's application once the batch
    /// is applied: a pending event without one is marked as awaiting its submission.
    static func write(_ rows: [(event: LedgerEvent, outcome: EventOutcome)], conflictIDs: [Int64],
                      references: [Int64: Int], applicationExists: (UUID) -> Bool, on conn: Connection) throws {
        guard !rows.isEmpty else { return }
        _ = try conn.copyIn(copySQL) { writer in
            var encoder = BinaryCopyEncoder()
            var json: [UInt8] = []
            json.reserveCapacity(4096)
            for (event, outcome) in rows {
                var data = event.data
                if let index = references[event.ledgerID], index < conflictIDs.count,
                   var object = data.objectValue {
                    object["conflict_id"] = .int(conflictIDs[index])
                    data = .object(object)
                }
                encoder.beginRow(fieldCount: 12)
                encoder.writeInt64(event.ledgerID)
                encoder.writeUUID(event.eventID)
                encoder.writeUUID(event.applicationID)
                encoder.writeText(event.type.rawValue)
                encoder.writeText(event.origin.rawValue)
                if let agency = event.agencyCode { encoder.writeText(agency) } else { encoder.writeNull() }
                if let seq = event.seq { encoder.writeInt64(seq) } else { encoder.writeNull() }
                encoder.writeTimestamp(microsecondsSince1970: event.occurredAt.microseconds)
                encoder.writeInt32(event.occurredAt.offsetSeconds)
                json.removeAll(keepingCapacity: true)
                JSONWriter.writeForJSONB(data, into: &json)
                encoder.writeJSONB(utf8: json)
                encoder.writeText(outcome.rawValue)
                encoder.writeBool(outcome == .pending && !applicationExists(event.applicationID))
                try encoder.flushIfNeeded(into: writer)
            }
            encoder.writeTrailer()
            try encoder.flush(into: writer)
        }
    }

    /// Makes sure the ledger has its partitions for this month and the next (migration 7), so
    /// the month's rows never land in the DEFAULT partition. A cheap look-up when they exist (the
    /// normal case); creating one takes a short exclusive lock on the ledger, once a month. A
    /// failure (a role without the function, a lock held by a long report) is only a warning:
    /// the DEFAULT partition stores the rows, and the next merge or `db partitions create`
    /// moves them into their month.
    static func ensurePartitions(on conn: Connection, logger: Logger) {
        do {
            try conn.withTransaction { conn in
                _ = try conn.execute("SELECT cardsync.ensure_ledger_partitions(now(), now() + interval '1 month')")
            }
        } catch {
            logger.warning("could not create the ledger's partitions for this month and the next; new events go to the default partition until cardsync db partitions create runs",
                           metadata: ["error": "\(error)"])
        }
    }

    static func updateOutcomes(_ changes: [Int64: EventOutcome], on conn: Connection) throws {
        guard !changes.isEmpty else { return }
        let sorted = changes.sorted { $0.key < $1.key }
        try conn.execute("""
            UPDATE cardsync.ledger l SET outcome = u.outcome
            FROM unnest($1::int8[], $2::text[]) AS u(ledger_id, outcome)
            WHERE l.ledger_id = u.ledger_id AND l.outcome = 'pending'
            """, [.int64Array(sorted.map(\.key)), .textArray(sorted.map(\.value.rawValue))])
    }
}
