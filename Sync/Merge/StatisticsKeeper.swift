import Logging
import PostgresClient

/// Keeps the planner's statistics in step during a bulk sync.
///
/// A first sync grows the ledger and the projection from nothing to millions of rows faster
/// than autovacuum analyses them; with statistics that still say "empty", the planner picks
/// sequential scans for the merge's index look-ups and a batch slows down tenfold. Analysing the
/// two tables whenever they have doubled since the last analysis keeps every batch on its
/// indexes for a dozen analyses over a million events (each a fraction of a second).
enum StatisticsKeeper {
    static let tables = ["ledger", "applications"]

    /// Analyses the sync's big tables if more rows changed since their last analysis than they
    /// had then (and at least 20,000). Runs outside any transaction that holds the merge lock.
    static func refreshIfStale(on conn: Connection, logger: Logger) throws {
        let rows = try conn.query("""
            SELECT relname FROM pg_stat_user_tables
            WHERE schemaname = 'cardsync' AND relname = ANY($1::text[])
              AND n_mod_since_analyze > greatest(20000, n_live_tup - n_mod_since_analyze)
            """, [.textArray(tables)])
        for row in rows {
            let table = try row.decode(String.self, column: "relname")
            try conn.executeScript("ANALYZE cardsync.\(try conn.escapeIdentifier(table))")
            logger.debug("analysed a table that grew during sync", metadata: ["table": "\(table)"])
        }
    }
}
