import CardCore
import Foundation
import PostgresClient

/// The one mapping between the central tables' rows and the fold's values: the columns to select
/// and how a row becomes an `ApplicationState` or a `LedgerEvent` (and field stamps go back), for
/// the merge, the rebuild, verification, reconcile and pull alike.
enum CentralRowMapper {
    static let applicationColumns = """
        application_id, owning_agency, channel, child_id_number, status, held_status, version,
        form::text AS form, field_stamps::text AS field_stamps, verified_documents, card_number,
        dispatched_to, issued_by,
        (extract(epoch FROM submitted_at) * 1000000)::int8 AS submitted_us,
        (extract(epoch FROM closed_at) * 1000000)::int8 AS closed_us,
        last_ledger_id
        """

    static let ledgerColumns = """
        ledger_id, event_id, application_id, type, agency_code, seq,
        (extract(epoch FROM occurred_at) * 1000000)::int8 AS occurred_us, occurred_offset, data::text AS data
        """

    static func decodeApplication(_ row: Row) throws -> ApplicationState {
        var stamps: [String: FieldStamp] = [:]
        let stampJSON = try JSONParser.parse(try row.decode(String.self, column: "field_stamps"))
        for (path, value) in stampJSON.objectValue ?? [:] {
            let parts = value.arrayValue ?? []
            guard parts.count == 3, let v = parts[0].intValue, let t = parts[1].intValue, let l = parts[2].intValue else { continue }
            stamps[path] = FieldStamp(version: Int(v), occurredAt: t, ledgerID: l)
        }
        let status = try row.decode(String.self, column: "status")
        let held = try row.decode(String?.self, column: "held_status")
        let closed = try row.decode(Int64?.self, column: "closed_us")
        return ApplicationState(
            applicationID: try row.decode(UUID.self, column: "application_id"),
            owningAgency: try row.decode(String.self, column: "owning_agency"),
            channel: try row.decode(String.self, column: "channel"),
            childIDNumber: try row.decode(String.self, column: "child_id_number"),
            status: try decodeStatus(status, column: "status"),
            heldStatus: try held.map { try decodeStatus($0, column: "held_status") },
            version: Int(try row.decode(Int32.self, column: "version")),
            form: try JSONParser.parse(try row.decode(String.self, column: "form")),
            fieldStamps: stamps,
            verifiedDocuments: try row.decode([String].self, column: "verified_documents"),
            cardNumber: try row.decode(String?.self, column: "card_number"),
            dispatchedTo: try row.decode(String?.self, column: "dispatched_to"),
            issuedBy: try row.decode(String?.self, column: "issued_by"),
            submittedAt: Timestamp(microseconds: try row.decode(Int64.self, column: "submitted_us")),
            closedAt: closed.map { Timestamp(microseconds: $0) },
            lastLedgerID: try row.decode(Int64.self, column: "last_ledger_id"))
    }

    /// A status read from the projection. An unknown one means the schema and this cardsync
    /// disagree (a newer cardsync wrote it, or a hand edit): guessing a status would fold the
    /// application wrongly, so the read fails and says so.
    static func decodeStatus(_ text: String, column: String) throws -> ApplicationStatus {
        guard let status = ApplicationStatus(rawValue: text) else {
            throw PostgresError(kind: .decoding,
                                message: "the projection holds the status '\(text)', which this cardsync does not know (written by a newer cardsync or by hand); nothing was changed",
                                column: column)
        }
        return status
    }

    static func decodeLedgerEvent(_ row: Row) throws -> LedgerEvent {
        let type = try row.decode(String.self, column: "type")
        guard let eventType = EventType(rawValue: type) else {
            throw PostgresError(kind: .decoding, message: "unknown event type in the ledger", column: "type")
        }
        return LedgerEvent(
            ledgerID: try row.decode(Int64.self, column: "ledger_id"),
            eventID: try row.decode(UUID.self, column: "event_id"),
            applicationID: try row.decode(UUID.self, column: "application_id"),
            type: eventType,
            agencyCode: try row.decode(String?.self, column: "agency_code"),
            seq: try row.decode(Int64?.self, column: "seq"),
            occurredAt: Timestamp(microseconds: try row.decode(Int64.self, column: "occurred_us"),
                                  offsetSeconds: try row.decode(Int32.self, column: "occurred_offset")),
            data: try JSONParser.parse(try row.decode(String.self, column: "data")))
    }

    /// `{"path": [version, occurred_us, ledger_id]}`: compact, and read back by `decodeApplication`.
    static func encodeStamps(_ stamps: [String: FieldStamp]) -> String {
        if stamps.isEmpty { return "{}" }   // most applications: never amended
        var object: [String: JSONValue] = [:]
        for (path, stamp) in stamps {
            object[path] = .array([.int(Int64(stamp.version)), .int(stamp.occurredAt), .int(stamp.ledgerID)])
        }
        return JSONWriter.string(.object(object))
    }
}
