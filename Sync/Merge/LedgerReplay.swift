import CardCore
import Foundation
import PostgresClient

/// Folds the whole ledger in ledger order: the projection as it must be, by definition.
///
/// `db verify` compares this fold with the live projection; the merge writes it over the live
/// projection when a sync was interrupted between its ledger and projection commits.
enum LedgerReplay {
    /// Replays every ledger event, a page per round trip. `afterPage` sees the engine after each
    /// page (to take its effects, which keeps memory to the state rather than every event).
    static func fold(on conn: Connection, pageSize: Int = 20_000,
                     afterPage: (inout LifecycleEngine) -> Void) throws -> (engine: LifecycleEngine, events: Int) {
        var engine = LifecycleEngine(store: LifecycleStore(), now: .now) { 0 }
        var after: Int64 = 0
        var count = 0
        while true {
            let rows = try conn.query("""
                SELECT \(unescaped: CentralRowMapper.ledgerColumns) FROM cardsync.ledger
                WHERE ledger_id > $1 ORDER BY ledger_id LIMIT $2
                """, [.int64(after), .int64(Int64(pageSize))])
            if rows.isEmpty { break }
            for row in rows {
                let event = try CentralRowMapper.decodeLedgerEvent(row)
                engine.replay(event)
                after = event.ledgerID
                count += 1
            }
            afterPage(&engine)
        }
        afterPage(&engine)
        return (engine, count)
    }
}
