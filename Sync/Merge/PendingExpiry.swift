import CardCore
import Foundation
import PostgresClient

/// The `pending_expired` sweep: the merge's work, and how each agency hears of it.
///
/// The sweep opens a conflict for every event that waited past the pending horizon, whoever's
/// event it is, so it belongs to the merge (the in-process merge of a sync with the owner's or
/// bureau's role, `bureau import`, and the bureau's `cardsync merge`), not to one agency's push.
/// Each agency's sync then reports the `pending_expired` conflicts that concern it (its event,
/// or its application) exactly once, whichever process opened them: a per-agency cursor,
/// `agency_sync_state.expired_reported_through`, moves past them in the same transaction.
public enum PendingExpiry {
    /// Opens the conflicts for expired pending events, under the merge lock; returns how many.
    @discardableResult
    public static func sweep(horizonSeconds: Int64, on connection: Connection) throws -> Int {
        try connection.withTransaction { conn in
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
            try KeyedPlans.require(on: conn)
            return try ConflictWriter.openExpired(horizonSeconds: horizonSeconds, on: conn)
        }
    }

    /// The sweep (see `sweep`), then the `pending_expired` conflicts concerning `agency` that no
    /// sync of it has reported yet, which count as reported once this returns: one transaction
    /// under the merge lock, so that every conflict with a lower id is committed and none is
    /// skipped. A sync of an agency that merges in-process calls this once per run.
    public static func sweepAndTakeUnreported(for agency: String, horizonSeconds: Int64,
                                              on connection: Connection) throws -> Int {
        try connection.withTransaction { conn in
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
            try KeyedPlans.require(on: conn)
            // A cursor move lost in a server crash only reports a conflict once more, and the
            // sweep runs again next time: neither is worth a disk flush per agency sync.
            try conn.executeScript("SET LOCAL synchronous_commit = off")
            try ConflictWriter.openExpired(horizonSeconds: horizonSeconds, on: conn)
            // What a staging sync calls alone (migration 6): one cursor rule for both paths.
            return try AgencyFunctions(connection: conn, agency: agency).takeExpiredReports()
        }
    }
}
