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

    static func read(on conn: Connection) throws -> Reading {
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

    /// Records that the projection now holds the ledger through `ledgerID` (in the transaction
    /// that wrote the projection).
    static func advance(to ledgerID: Int64, on conn: Connection) throws {
        try conn.execute("UPDATE cardsync.projection_state SET through_ledger_id = $1", [.int64(ledgerID)])
    }
}
