import PostgresClient

/// Tells the planner that the merge's statements touch a batch's keys, never a whole table.
///
/// A first sync grows the ledger and the projection from nothing to millions of rows faster
/// than autovacuum analyses them. With statistics that still say "empty", the planner picks
/// sequential scans and hash joins for the merge's look-ups and a batch slows down tenfold.
/// Every statement of a merge or a pull is a look-up by key (event ids, application ids, child
/// identity numbers, ledger ids), for which an index scan in a nested loop is right whatever the
/// table's size, so the transaction rules the other plans out instead of analysing the tables
/// while they grow (which cost a twentieth of a bulk sync). JIT compilation is off as well: the
/// disabled plans' penalty costs would otherwise push even a one-row statement past the JIT
/// threshold, and compiling takes longer than any of these statements runs.
enum KeyedPlans {
    /// Applies to the current transaction only.
    static func require(on conn: Connection) throws {
        try conn.executeScript("""
            SET LOCAL enable_seqscan = off;
            SET LOCAL enable_hashjoin = off;
            SET LOCAL enable_mergejoin = off;
            SET LOCAL jit = off
            """)
    }
}
