import Logging
import PostgresClient

/// Keeps the planner's statistics of the merge's look-up columns in step during a bulk sync.
///
/// A first sync grows the ledger and the projection from nothing to millions of rows faster
/// than autovacuum analyses them. Without statistics the planner takes an equality on an id to
/// match half a percent of the table, and for a batch's thousands of ids it then reads whole
/// partial indexes, or probes the wrong index, instead of probing each id: a batch slows down
/// tenfold. Analysing the look-up columns whenever a table has doubled since its last analysis
/// keeps every batch on the right index, a dozen analyses over a million events.
enum StatisticsKeeper {
    /// The tables whose look-up columns are analysed. Sampling only the columns the merge's
    /// look-ups filter on skips the large jsonb columns, whose statistics cost most of a full
    /// ANALYZE; autovacuum still analyses every column later, for the reports' queries. The
    /// column lists live in `cardsync.analyze_lookup_columns` (migration 6), which runs as the
    /// tables' owner: the bureau's roles may not ANALYZE tables they do not own.
    static let tables = ["applications", "ledger"]

    /// Analyses the sync's big tables if they have more than doubled since their last analysis
    /// (and hold at least 20,000 rows). Runs outside any transaction that holds the merge lock.
    static func refreshIfStale(on conn: Connection, logger: Logger) throws {
        // A column-restricted ANALYZE does not reset n_mod_since_analyze, so growth is measured
        // against the row count it recorded (reltuples, -1 before the first analysis).
        // The two tables' counters directly: the pg_stat_user_tables view reads every table's
        // and took 2 ms, once per batch.
        let rows = try conn.query("""
            SELECT t.name AS relname FROM unnest($1::text[]) AS t(name)
            JOIN pg_class c ON c.oid = to_regclass('cardsync.' || t.name)
            WHERE pg_stat_get_live_tuples(c.oid) > greatest(20000, 2 * c.reltuples)
            """, [.textArray(tables)])
        for row in rows {
            let table = try row.decode(String.self, column: "relname")
            // The function samples 6,000 rows instead of 30,000 (statistics target 20): enough to tell that an id is (nearly)
            // unique and which few values a status has, which is all these plans need.
            // SKIP_LOCKED: autovacuum often vacuums these tables while they grow. Waiting for
            // its lock took a second (until the server cancelled the vacuum, to be redone
            // later); skipped, the analysis is tried again before the next batch.
            try conn.execute("SELECT cardsync.analyze_lookup_columns($1)", [.text(table)])
            logger.debug("analysed a table that grew during sync (unless autovacuum held it)", metadata: ["table": "\(table)"])
        }
    }
}
