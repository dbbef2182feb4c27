import CardCore
import Foundation
import Logging
import PostgresClient

/// Replaces the live projection with the fold of the whole ledger.
///
/// Needed only after a sync died between committing a batch's ledger rows and committing its
/// projection rows (a window of a few milliseconds per batch): the ledger is the record, so the
/// projection is made from it again. It takes as long as `db verify` and runs under the merge
/// lock, so other merges wait for it.
enum ProjectionRebuild {
    /// Rebuilds in its own transaction. The caller holds the merge lock (session) or none; the
    /// transaction takes it (a session re-acquires its own lock without waiting).
    /// Returns true when it rebuilt (false: another process had already caught it up).
    @discardableResult
    static func run(on connection: Connection, logger: Logger) throws -> Bool {
        try connection.withTransaction { conn in
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
            let watermark = try ProjectionWatermark.read(on: conn)
            guard !watermark.isCurrent else { return false }
            logger.warning("the projection is behind the ledger (a sync stopped between its two commits); rebuilding it from the ledger",
                           metadata: ["through": "\(watermark.through)", "ledger_last": "\(watermark.last)"])
            let started = ContinuousClock.now
            let (engine, events) = try LedgerReplay.fold(on: conn) { _ = $0.takeEffects() }
            let apps = Array(engine.store.applications.values)
            // Applications whose whole history went with an archived month are not in the fold:
            // they stay as they were (docs/deploy.md, archiving the ledger).
            try conn.execute("""
                DELETE FROM cardsync.applications a
                WHERE NOT EXISTS (SELECT 1 FROM cardsync.archived_events e WHERE e.application_id = a.application_id)
                """)
            try ProjectionWriter.insert(apps, on: conn)
            try ProjectionWatermark.advance(to: watermark.last, on: conn)
            logger.warning("rebuilt the projection from the ledger",
                           metadata: ["events": "\(events)", "applications": "\(apps.count)",
                                      "seconds": "\((ContinuousClock.now - started).seconds)"])
            return true
        }
    }
}
