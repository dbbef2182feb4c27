import PostgresClient

/// Tells the planner that the merge's statements touch a batch's keys, never a whole table.
///
/// Every statement of a merge or a pull is a look-up by key (event ids, application ids, child
/// identity numbers, ledger ids), for which index scans and nested loops are right whatever the
/// table's size; a sequential scan or a hash join over a growing table is the plan that turns a
/// batch's milliseconds into seconds when statistics lag behind a bulk sync (see also
/// `StatisticsKeeper`). JIT compilation and parallel workers are off as well: the disabled
/// plans' penalty costs would otherwise push even a one-row statement past the JIT threshold,
/// and compiling or starting workers takes longer than any of these statements runs. A random
/// page read is costed like a sequential one (nearly): the probes read recently written index
/// pages, which are in memory, and at the default cost the planner preferred reading a whole
/// partial index of pending events in order (100 ms) to probing it for a batch's 8,000
/// applications (15 ms).
enum KeyedPlans {
    /// Applies to the current transaction only.
    static func require(on conn: Connection) throws {
        try conn.executeScript("""
            SET LOCAL enable_seqscan = off;
            SET LOCAL enable_hashjoin = off;
            SET LOCAL enable_mergejoin = off;
            SET LOCAL jit = off;
            SET LOCAL max_parallel_workers_per_gather = 0;
            SET LOCAL random_page_cost = 1.1
            """)
    }
}
