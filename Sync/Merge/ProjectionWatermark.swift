import Logging
import PostgresClient

/// How far the projection has taken in the ledger: `cardsync.projection_state.through_ledger_id`.
///
/// Every merge moves it in the transaction that writes the projection. A sync writes the
/// projection on a second connection and commits it just after the ledger (`CentralMerge`), so a
/// process that dies between those two commits leaves the watermark behind the ledger's last
/// id. The next merge sees that under the merge lock and rebuilds the projection from the
/// ledger before it applies anything (`ProjectionRebuild`).
public enum ProjectionWatermark {
    public struct Reading: Sendable, Equatable {
        /// The last ledger id whose effects the projection holds.
        public var through: Int64
        /// The ledger's last id.
        public var last: Int64
        public var isCurrent: Bool { through == last }
    }

    /// The watermark and the ledger's last id (read only: also on a standby).
    public static func read(on conn: Connection) throws -> Reading {
        let rows = try conn.query("""
            SELECT p.through_ledger_id AS through,
                   coalesce((SELECT max(ledger_id) FROM cardsync.ledger), 0)::int8 AS last
            FROM cardsync.projection_state p
            """)
        guard let row = rows.first else {
            throw SyncError("cardsync.projection_state has no row: the central schema was changed by hand; run cardsync db migrate on a fresh database")
        }
        return Reading(through: try row.decode(Int64.self, column: "through"),
                       last: try row.decode(Int64.self, column: "last"))
    }

    /// Makes sure the projection holds the whole ledger before a command reads it: if the
    /// watermark is behind (a sync died between its two commits), rebuilds the projection from
    /// the ledger under the merge lock. Returns true when it had to rebuild.
    ///
    /// Every command that reads the projection calls this first (sync, even with nothing new;
    /// reports; conflicts; bureau commands through the merge), so a stopped sync can never leave
    /// wrong figures behind. Reading the watermark costs one index probe. A merge that is
    /// between its two commits right now holds the merge lock, so the rebuild's own check,
    /// under that lock, finds the projection current and does nothing.
    @discardableResult
    public static func repairIfBehind(on conn: Connection, logger: Logger) throws -> Bool {
        guard try !read(on: conn).isCurrent else { return false }
        return try ProjectionRebuild.run(on: conn, logger: logger)
    }

    /// Records that the projection now holds the ledger through `ledgerID` (in the transaction
    /// that wrote the projection).
    static func advance(to ledgerID: Int64, on conn: Connection) throws {
        try conn.execute("UPDATE cardsync.projection_state SET through_ledger_id = $1", [.int64(ledgerID)])
    }
}
