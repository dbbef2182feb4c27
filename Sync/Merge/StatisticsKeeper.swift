import Logging
import PostgresClient

/// Keeps the planner's statistics in step during a bulk sync.
///
/// A first sync grows the ledger and the projection from nothing to millions of rows faster
/// than autovacuum analyses them; with statistics that still say "empty", the planner picks
/// sequential scans for the merge's index look-ups and a batch slows down tenfold. Analysing the
/// two tables whenever they have changed by a fifth since the last analysis costs a fraction of
/// a second and keeps every batch on its indexes.
enum StatisticsKeeper {
    static let tables = ["ledger", "applications"]

    /// Analyses the sync's big tables if they changed by more than 20% (and 20,000 rows) since
    /// their last analysis. Runs outside any transaction that holds the merge lock.
    static func refreshIfStale(on conn: Connection, logger: Logger) throws {
        let rows = try conn.query("""
            SELECT relname FROM pg_stat_user_tables
            WHERE schemaname = 'cardsync' AND relname = ANY($1::text[])
              AND n_mod_since_analyze > greatest(20000, n_live_tup / 5)
            """, [.textArray(tables)])
        for row in rows {
            let table = try row.decode(String.self, column: "relname")
            try conn.executeScript("ANALYZE cardsync.\(try conn.escapeIdentifier(table))")
            logger.debug("analysed a table that grew during sync", metadata: ["table": "\(table)"])
        }
    }
}
