import CardCore
import Foundation
import PostgresClient

/// Writes changed applications to the projection.
///
/// Existing rows of changed applications are deleted by key and every changed application is
/// copied in again in its new state: one keyed DELETE and one binary COPY per batch, instead of
/// a staging table and a join whose plan depends on statistics that a bulk load outruns.
enum ProjectionWriter {
    static let columns = """
        application_id, owning_agency, channel, child_id_number, status, held_status, version, form,
        field_stamps, verified_documents, card_number, dispatched_to, issued_by, submitted_at,
        closed_at, last_ledger_id
        """

    static func write(_ apps: [ApplicationState], existing: Set<UUID>, on conn: Connection) throws {
        guard !apps.isEmpty else { return }
        let replaced = apps.lazy.map(\.applicationID).filter { existing.contains($0) }
        if !replaced.isEmpty {
            try conn.execute("DELETE FROM cardsync.applications WHERE application_id = ANY($1::uuid[])",
                             [.uuidArray(Array(replaced))])
        }
        try insert(apps, on: conn)
    }

    /// Copies applications the projection does not hold, inactive ones first, so that the
    /// one-active-application-per-child index never sees a child's new active row before its
    /// rival (in the same rows) has left.
    static func insert(_ apps: [ApplicationState], on conn: Connection) throws {
        try copy(apps.filter { !$0.isActive } + apps.filter(\.isActive), into: "cardsync.applications", on: conn)
    }

    static func copy(_ apps: [ApplicationState], into table: String, on conn: Connection) throws {
        _ = try conn.copyIn("COPY \(unescaped: table) (\(unescaped: columns)) FROM STDIN (FORMAT binary)") { writer in
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
                JSONWriter.writeForJSONB(app.form, into: &json)
                encoder.writeJSONB(utf8: json)
                encoder.writeJSONB(CentralRowMapper.encodeStamps(app.fieldStamps))
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
