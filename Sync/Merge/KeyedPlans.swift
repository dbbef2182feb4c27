import PostgresClient

/// Tells the planner that the merge's statements touch a batch's keys, never a whole table.
///
/// Every statement of a merge or a pull is a look-up by key (event ids, application ids, child
/// identity numbers, ledger ids), for which index scans and nested loops are right whatever the
/// table's size; a sequential scan or a hash join over a growing table is the plan that turns a
/// batch's milliseconds into seconds when statistics lag behind a bulk sync (see also
/// `StatisticsKeeper`). JIT compilation and parallel workers are off as well: the disabled
/// plans' penalty costs would otherwise push even a one-row statement past the JIT threshold,
/// and compiling or starting workers takes longer than any of these statements runs.
enum KeyedPlans {
    /// Applies to the current transaction only.
    static func require(on conn: Connection) throws {
        try conn.executeScript("""
            SET LOCAL enable_seqscan = off;
            SET LOCAL enable_hashjoin = off;
            SET LOCAL enable_mergejoin = off;
            SET LOCAL jit = off;
            SET LOCAL max_parallel_workers_per_gather = 0
            """)
    }
}
