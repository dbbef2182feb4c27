import CardCore
import Foundation
import PostgresClient

/// The central database as one agency's sync and reconcile see it: the checked functions of
/// migration 6, each of which lets an agency's role act for its own agency only and the
/// bureau's roles for any. Sync and reconcile read through these whichever role they connect
/// with, so both roles get the same rows by the same path.
struct AgencyFunctions {
    let connection: Connection
    let agency: String

    /// The centre's record of the agency's sync (zeros before its first).
    func position() throws -> CentralSyncState {
        let rows = try connection.query("SELECT pushed_seq, pulled_delivery FROM cardsync.agency_sync_position($1)",
                                        [.text(agency)])
        guard let row = rows.first else { return CentralSyncState() }
        return CentralSyncState(pushedSeq: try row.decode(Int64.self, column: "pushed_seq"),
                                pulledDelivery: try row.decode(Int64.self, column: "pulled_delivery"))
    }

    /// Up to `limit` deliveries after `after`, in delivery order, optionally only of `eventIDs`.
    func deliveries(after: Int64, limit: Int, eventIDs: [UUID]? = nil) throws -> [(deliveryID: Int64, event: LedgerEvent)] {
        try deliveryRows(after: after, limit: limit, eventIDs: eventIDs).map(Self.decodeDelivery)
    }

    /// The rows of `deliveries`, undecoded (for callers that count the bytes received).
    func deliveryRows(after: Int64, limit: Int, eventIDs: [UUID]? = nil) throws -> QueryResult {
        try connection.query("SELECT * FROM cardsync.agency_deliveries($1, $2, $3, $4)",
                             [.text(agency), .int64(after), .int32(Int32(clamping: limit)), eventIDs.map { .uuidArray($0) } ?? .null])
    }

    static func decodeDelivery(_ row: Row) throws -> (deliveryID: Int64, event: LedgerEvent) {
        (try row.decode(Int64.self, column: "delivery_id"), try CentralRowMapper.decodeLedgerEvent(row))
    }

    /// Moves the centre's pull cursor to `delivery`.
    func recordPull(through delivery: Int64) throws {
        try connection.execute("SELECT cardsync.record_pull($1, $2)", [.text(agency), .int64(delivery)])
    }

    /// Raises the agency's high-water mark to `seq` (never lowers it).
    func raisePushedSeq(to seq: Int64) throws {
        try connection.execute("SELECT cardsync.raise_pushed_seq($1, $2)", [.text(agency), .int64(seq)])
    }

    /// The `pending_expired` conflicts concerning the agency that no sync reported yet; they
    /// count as reported once this returns.
    func takeExpiredReports() throws -> Int {
        let rows = try connection.query("SELECT cardsync.take_expired_reports($1) AS fresh", [.text(agency)])
        return Int(try rows.first?.decode(Int64.self, column: "fresh") ?? 0)
    }

    /// Which of `eventIDs` the centre has delivered to the agency (ids only).
    func delivered(_ eventIDs: Set<UUID>) throws -> Set<UUID> {
        var found = Set<UUID>()
        for row in try connection.query("SELECT event_id FROM cardsync.agency_delivered_events($1)", [.text(agency)]) {
            let id = try row.decode(UUID.self, column: "event_id")
            if eventIDs.contains(id) { found.insert(id) }
        }
        return found
    }

    /// The agency's last delivery id (0 when none).
    func lastDelivery() throws -> Int64 {
        try connection.query("SELECT cardsync.agency_last_delivery($1) AS last", [.text(agency)])
            .first?.decode(Int64.self, column: "last") ?? 0
    }
}

/// The centre's record of one agency's sync.
struct CentralSyncState {
    var pushedSeq: Int64 = 0
    var pulledDelivery: Int64 = 0
}
