import CardCore
import Foundation
import PostgresClient

/// Reads the slice of central state one batch touches into a `LifecycleStore` (rows mapped by
/// `CentralRowMapper`).
enum BatchStateLoader {
    /// Applications by id and the open applications of the given children, with their pending
    /// events. `submittedHere` are applications the batch submits (believed new): only events
    /// that arrived before their application can be pending for them, and a small index holds
    /// exactly those.
    ///
    /// With a `helper` (a second connection, idle and outside any transaction, while the caller
    /// holds the merge lock so that both see the same committed state), the children's
    /// applications are looked up on it while `connection` looks up the applications by id and
    /// the pending events: the server and the decoding work on two cores instead of one.
    static func load(applications ids: [UUID], submittedHere: [UUID] = [], children: [String],
                     helper: Connection? = nil, on connection: Connection) throws -> LifecycleStore {
        let idSet = Set(ids)
        let awaiting = submittedHere.filter { !idSet.contains($0) }
        let background = helper.map { helper in
            BackgroundWork {
                try helper.withTransaction { conn in
                    try KeyedPlans.require(on: conn)
                    return try openApplications(ofChildren: children, on: conn)
                }
            }
        }
        // Separate look-ups by id and by child rather than one OR, which the planner turns into a
        // scan of the whole projection. An application can come back twice; `put` keeps one.
        var store = LifecycleStore()
        let mine = Result {
            (try connection.query("SELECT \(unescaped: CentralRowMapper.applicationColumns) FROM cardsync.applications WHERE application_id = ANY($1::uuid[])",
                                  [.uuidArray(ids)]).map(CentralRowMapper.decodeApplication),
             try pendingEvents(of: ids, awaiting: awaiting, on: connection))
        }
        // Always wait for the helper before leaving, even on an error: it uses its connection.
        let fromHelper = background?.wait()
        let (byID, pending) = try mine.get()
        for app in byID { store.put(app) }
        var seen = Set<Int64>()
        for event in pending where seen.insert(event.ledgerID).inserted { store.hold(event) }
        var more: [UUID] = []
        for app in try fromHelper?.get() ?? openApplications(ofChildren: children, on: connection) {
            if store[app.applicationID] == nil && !idSet.contains(app.applicationID) { more.append(app.applicationID) }
            store.put(app)
        }
        // Rare: another open application of a submitted child; its pending events too.
        for event in try pendingEvents(of: more, awaiting: [], on: connection) where seen.insert(event.ledgerID).inserted {
            store.hold(event)
        }
        return store
    }

    /// The open applications (on hold included) and the issued ones of the given children: the
    /// duplicate rule needs both.
    private static func openApplications(ofChildren children: [String], on connection: Connection) throws -> [ApplicationState] {
        guard !children.isEmpty else { return [] }
        return try connection.query("""
            SELECT \(unescaped: CentralRowMapper.applicationColumns) FROM cardsync.applications
            WHERE status = ANY($2::text[]) AND child_id_number = ANY($1::text[])
            UNION ALL
            SELECT \(unescaped: CentralRowMapper.applicationColumns) FROM cardsync.applications
            WHERE status = 'on_hold' AND child_id_number = ANY($1::text[])
            UNION ALL
            SELECT \(unescaped: CentralRowMapper.applicationColumns) FROM cardsync.applications
            WHERE status = 'issued' AND child_id_number = ANY($1::text[])
            """, [.textArray(children), .textArray(ApplicationStatus.activeNames)]).map(CentralRowMapper.decodeApplication)
    }

    /// The pending events of `ids`, and those of `awaiting` that arrived before their
    /// application (the two can overlap: the caller holds each event once).
    private static func pendingEvents(of ids: [UUID], awaiting: [UUID], on connection: Connection) throws -> [LedgerEvent] {
        guard !ids.isEmpty || !awaiting.isEmpty else { return [] }
        return try connection.query("""
            SELECT \(unescaped: CentralRowMapper.ledgerColumns) FROM cardsync.ledger
            WHERE outcome = 'pending' AND application_id = ANY($1::uuid[])
            UNION ALL
            SELECT \(unescaped: CentralRowMapper.ledgerColumns) FROM cardsync.ledger
            WHERE outcome = 'pending' AND awaits_application AND application_id = ANY($2::uuid[])
            """, [.uuidArray(ids), .uuidArray(awaiting)]).map(CentralRowMapper.decodeLedgerEvent)
    }
}
