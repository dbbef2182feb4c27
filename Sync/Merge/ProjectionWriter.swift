import CardCore
import Foundation
import PostgresClient

/// Writes changed applications to the projection.
///
/// New applications are copied straight into the table; existing ones go through a staging
/// table and two set-based UPDATEs. Rows leaving the "active" set are written before rows
/// entering it, so the one-active-application-per-child index never sees two at once.
enum ProjectionWriter {
    static let columns = """
        application_id, owning_agency, channel, child_id_number, status, held_status, version, form,
        field_stamps, verified_documents, card_number, dispatched_to, issued_by, submitted_at,
        closed_at, last_ledger_id
        """

    static func write(_ apps: [ApplicationState], existing: Set<UUID>, on conn: Connection) throws {
        guard !apps.isEmpty else { return }
        let updates = apps.filter { existing.contains($0.applicationID) }
        // Inactive first, so that a child's active row is never inserted before its rival leaves.
        let inserts = apps.filter { !existing.contains($0.applicationID) }.sorted { !$0.isActive && $1.isActive }
        if !updates.isEmpty {
            try conn.executeScript("""
                CREATE TEMP TABLE IF NOT EXISTS cardsync_application_stage
                    (LIKE cardsync.applications INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
                """)
            try copy(updates, into: "cardsync_application_stage", on: conn)
            for active in [false, true] {
                try conn.execute("""
                    UPDATE cardsync.applications a SET
                        status = s.status, held_status = s.held_status, version = s.version, form = s.form,
                        field_stamps = s.field_stamps, verified_documents = s.verified_documents,
                        card_number = s.card_number, dispatched_to = s.dispatched_to, issued_by = s.issued_by,
                        closed_at = s.closed_at, last_ledger_id = s.last_ledger_id
                    FROM cardsync_application_stage s
                    WHERE a.application_id = s.application_id
                      AND (s.status IN ('submitted', 'returned', 'approved', 'produced', 'dispatched')) = $1
                    """, [.bool(active)])
            }
            try conn.execute("DELETE FROM cardsync_application_stage")
        }
        if !inserts.isEmpty {
            try copy(inserts, into: "cardsync.applications", on: conn)
        }
    }

    static func copy(_ apps: [ApplicationState], into table: String, on conn: Connection) throws {
        _ = try conn.copyIn("COPY \(table) (\(columns)) FROM STDIN (FORMAT binary)") { writer in
            var encoder = BinaryCopyEncoder()
            var json: [UInt8] = []
            for app in apps {
                encoder.beginRow(fieldCount: 16)
                encoder.writeUUID(app.applicationID)
                encoder.writeText(app.owningAgency)
                encoder.writeText(app.channel)
                encoder.writeText(app.childIDNumber)
                encoder.writeText(app.status.rawValue)
                if let held = app.heldStatus { encoder.writeText(held.rawValue) } else { encoder.writeNull() }
                encoder.writeInt32(Int32(app.version))
                json.removeAll(keepingCapacity: true)
                JSONWriter.write(app.form, into: &json)
                encoder.writeJSONB(String(decoding: json, as: UTF8.self))
                encoder.writeJSONB(StateLoader.encodeStamps(app.fieldStamps))
                encoder.writeTextArray(app.verifiedDocuments)
                writeOptional(app.cardNumber, &encoder)
                writeOptional(app.dispatchedTo, &encoder)
                writeOptional(app.issuedBy, &encoder)
                encoder.writeTimestamp(microsecondsSince1970: app.submittedAt.microseconds)
                if let closed = app.closedAt {
                    encoder.writeTimestamp(microsecondsSince1970: closed.microseconds)
                } else {
                    encoder.writeNull()
                }
                encoder.writeInt64(app.lastLedgerID)
                try encoder.flushIfNeeded(into: writer)
            }
            encoder.writeTrailer()
            try encoder.flush(into: writer)
        }
    }

    private static func writeOptional(_ value: String?, _ encoder: inout BinaryCopyEncoder) {
        if let value { encoder.writeText(value) } else { encoder.writeNull() }
    }
}
