import Foundation
import PostgresClient

/// The agency's side of the staged push: hands validated outbox lines to the centre, waits
/// (briefly) for the bureau's merge, and collects what the merge made of them.
///
/// A staged batch is durable once `stage` returns: the checkpoint may move past its lines, and
/// the bureau's merge applies each batch exactly once (`StagedBatchMerger`).
struct StagingClient {
    let connection: Connection
    let agency: String

    /// Stages one batch (its lines as the outbox holds them, without the newline) and returns its id.
    func stage(lines: [String], maxSeq: Int64) throws -> Int64 {
        // One value, joined by newlines (no outbox line holds one): see migration 6.
        let rows = try connection.query("SELECT cardsync.stage_batch($1, $2, $3, $4) AS batch_id",
                                        [.text(agency), .int64(maxSeq), .int32(Int32(lines.count)),
                                         .text(lines.joined(separator: "\n"))])
        guard let id = try rows.first?.decode(Int64.self, column: "batch_id") else {
            throw SyncError("the central database did not return an id for the staged batch")
        }
        return id
    }

    /// Waits until every batch of the agency after `after` is merged, or until `wait` has passed.
    /// Returns whether all were merged. Polls with a growing interval: a merge service applies a
    /// batch in well under a second, and an agency's sync waits at most once per run.
    func waitForMerge(after: Int64, wait: Duration) throws -> Bool {
        let deadline = ContinuousClock.now + wait
        var interval = 0.02
        while true {
            let rows = try connection.query("""
                SELECT count(*) FILTER (WHERE NOT merged) AS unmerged FROM cardsync.agency_batches($1, $2)
                """, [.text(agency), .int64(after)])
            if try rows.first?.decode(Int64.self, column: "unmerged") == 0 { return true }
            let left = (deadline - ContinuousClock.now).seconds
            guard left > 0 else { return false }
            Thread.sleep(forTimeInterval: min(interval, left))
            interval = min(interval * 2, 0.5)
        }
    }

    /// What the merge made of the agency's batches since a sync last asked (they count as
    /// reported now), and how many staged lines still wait for it.
    struct Results {
        var merged = MergeResult()
        var refused = 0
        var unmerged = 0
    }

    /// Takes what the merge made of the agency's batches since the last take, in one REPEATABLE
    /// READ transaction: the function chooses the batches to report in one
    /// statement and counts the unmerged lines in another, and at READ COMMITTED each statement
    /// sees its own snapshot, so a merge that committed between the two left its batch neither
    /// reported nor unmerged ("pushed 0, unmerged 0" for events just applied). With one snapshot
    /// both statements see the same batches. Only this agency's sync, which holds the agency's
    /// lock, writes the agency's `agency_sync_state` row, so the row lock cannot conflict.
    func takeResults() throws -> Results {
        let rows = try connection.withTransaction(isolation: .repeatableRead) { conn in
            try conn.query("SELECT * FROM cardsync.take_batch_results($1)", [.text(agency)])
        }
        var out = Results()
        guard let row = rows.first else { return out }
        out.merged.accepted = Int(try row.decode(Int64.self, column: "accepted"))
        out.merged.alreadyPresent = Int(try row.decode(Int64.self, column: "already_present"))
        out.merged.pending = Int(try row.decode(Int64.self, column: "pending"))
        out.merged.conflictsOpened = Int(try row.decode(Int64.self, column: "conflicts_opened"))
        out.refused = Int(try row.decode(Int64.self, column: "refused"))
        out.unmerged = Int(try row.decode(Int64.self, column: "unmerged"))
        return out
    }
}
