import CardCore
import Foundation
import Logging
import PostgresClient

/// The bureau's side of the staged push: applies the batches agencies' roles staged, in the
/// order they were staged, each exactly once, with the same rules as an in-process sync
/// (`CentralMerge`).
///
/// Exactly once: a batch's ledger rows, its outcome in `staged_batches` and the deletion of
/// its lines commit in one transaction, under the merge lock, which also serialises concurrent
/// mergers (a second one finds the batch merged and takes the next). A merger killed anywhere
/// leaves the batch either wholly applied or wholly staged.
///
/// Every staged line is validated again here, with the queue rules an agency's sync applied: a
/// hand-made call to `stage_batch` cannot slip anything past them. A line that fails is kept in
/// `refused_lines` with its reason, never dropped.
public struct StagedBatchMerger {
    let connection: Connection
    let projection: Connection?
    let logger: Logger
    let pendingHorizonSeconds: Int64

    public init(connection: Connection, projection: Connection? = nil, logger: Logger,
                pendingHorizonSeconds: Int64 = SyncOptions().pendingHorizonSeconds) {
        self.connection = connection
        self.projection = projection
        self.logger = logger
        self.pendingHorizonSeconds = pendingHorizonSeconds
    }

    /// What a run of the merger applied.
    public struct Totals: Sendable, Equatable {
        public var batches = 0
        public var lines = 0
        public var merged = MergeResult()
        public var refused = 0
        /// Conflicts the expiry sweep opened after the batches.
        public var expiredConflicts = 0

        public init() {}

        /// Two runs' totals together (a service's rounds).
        public static func + (a: Totals, b: Totals) -> Totals {
            var r = a
            r.batches += b.batches
            r.lines += b.lines
            r.merged = r.merged + b.merged
            r.merged.ledgerIDs = []
            r.refused += b.refused
            r.expiredConflicts += b.expiredConflicts
            return r
        }

        public var json: JSONValue {
            [
                "batches": .int(Int64(batches)), "lines": .int(Int64(lines)),
                "accepted": .int(Int64(merged.accepted)), "already_present": .int(Int64(merged.alreadyPresent)),
                "pending": .int(Int64(merged.pending)), "conflicts_opened": .int(Int64(merged.conflictsOpened + expiredConflicts)),
                "refused": .int(Int64(refused)),
            ]
        }
    }

    /// Applies every staged batch (only `agency`'s, if given), then sweeps expired pending
    /// events. `shouldStop` is asked between batches (a service stopping on SIGTERM finishes
    /// the batch in hand first).
    @discardableResult
    public func mergeAll(agency: String? = nil, shouldStop: () -> Bool = { false }) throws -> Totals {
        var totals = Totals()
        while !shouldStop(), let outcome = try mergeNext(agency: agency) {
            totals.batches += 1
            totals.lines += outcome.lines
            totals.merged = totals.merged + outcome.merged
            totals.refused += outcome.refused
        }
        totals.merged.ledgerIDs = []
        if totals.batches > 0 || agency == nil {
            totals.expiredConflicts = try PendingExpiry.sweep(horizonSeconds: pendingHorizonSeconds, on: connection)
        }
        return totals
    }

    struct BatchOutcome {
        var batchID: Int64
        var lines: Int
        var merged: MergeResult
        var refused: Int
    }

    /// Applies the oldest staged batch; nil when none is left.
    func mergeNext(agency: String? = nil) throws -> BatchOutcome? {
        // The session lock covers choosing the batch and both of the merge's commits; the merge
        // takes it again (a session holds its own lock without waiting).
        try connection.execute("SELECT pg_advisory_lock($1)", [.int64(MergeLocks.merge)])
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1)", [.int64(MergeLocks.merge)]) }
        let candidates = try connection.query("""
            SELECT batch_id, agency_code, line_count FROM cardsync.staged_batches
            WHERE merged_at IS NULL AND ($1::text IS NULL OR agency_code = $1)
            ORDER BY batch_id LIMIT 1
            """, [agency.map { .text($0) } ?? .null])
        guard let row = candidates.first else { return nil }
        let batchID = try row.decode(Int64.self, column: "batch_id")
        let code = try row.decode(String.self, column: "agency_code")
        let (events, refusals) = try readAndValidate(batchID: batchID, agency: code)
        try StatisticsKeeper.refreshIfStale(on: connection, logger: logger)

        let record = { (merged: MergeResult, conn: Connection) throws in
            try Self.recordOutcome(batchID: batchID, agency: code, merged: merged, refusals: refusals, on: conn)
        }
        let merged: MergeResult
        if events.isEmpty {
            merged = MergeResult()
            try connection.withTransaction { conn in try record(merged, conn) }
        } else {
            merged = try CentralMerge(connection: connection, projection: projection, logger: logger)
                .merge(events, agency: code, now: .now, finish: record)
        }
        CrashPoint.reach("merge-after-commit")
        logger.info("merged a staged batch", metadata: [
            "batch": "\(batchID)", "agency": "\(code)", "events": "\(events.count)", "accepted": "\(merged.accepted)",
            "already_present": "\(merged.alreadyPresent)", "conflicts": "\(merged.conflictsOpened)", "refused": "\(refusals.count)",
        ])
        return BatchOutcome(batchID: batchID, lines: events.count + refusals.count, merged: merged, refused: refusals.count)
    }

    struct Refusal {
        var position: Int32
        var line: String
        var reason: String
    }

    /// The batch's lines in order, through the outbox validator.
    private func readAndValidate(batchID: Int64, agency: String) throws -> ([LedgerEvent], [Refusal]) {
        let rows = try connection.query("SELECT lines FROM cardsync.staged_lines WHERE batch_id = $1", [.int64(batchID)])
        guard let text = try rows.first?.decode(String.self, column: "lines") else {
            throw SyncError("staged batch \(batchID) has no lines in cardsync.staged_lines; run cardsync db verify and check the server's log")
        }
        let validator = EventLineValidator(mode: .outbox, now: .now)
        var events: [LedgerEvent] = []
        var refusals: [Refusal] = []
        var lastSeq: Int64?
        let lines = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
        events.reserveCapacity(lines.count)
        for (index, bytes) in lines.enumerated() {
            let position = Int32(index + 1)
            let verdict = validator.check(bytes, lineNumber: Int(position), lastSeq: lastSeq)
            if let seq = verdict.seq { lastSeq = max(lastSeq ?? seq, seq) }
            switch verdict.result {
            case .success(let event): events.append(LedgerEvent(queueEvent: event, agency: agency))
            case .failure(let reason):
                refusals.append(Refusal(position: position, line: String(decoding: bytes, as: UTF8.self),
                                        reason: "\(reason.code.rawValue): \(reason.detail)"))
            }
        }
        return (events, refusals)
    }

    /// The batch's outcome, its lines removed, its refusals kept, and a notice to waiting syncs:
    /// inside the merge's transaction. Refuses a batch someone else merged meanwhile.
    private static func recordOutcome(batchID: Int64, agency: String, merged: MergeResult, refusals: [Refusal],
                                      on conn: Connection) throws {
        let updated = try conn.execute("""
            UPDATE cardsync.staged_batches
            SET merged_at = now(), merged_by = session_user, accepted = $2, already_present = $3, pending = $4,
                conflicts_opened = $5, refused = $6
            WHERE batch_id = $1 AND merged_at IS NULL
            """, [.int64(batchID), .int32(Int32(merged.accepted)), .int32(Int32(merged.alreadyPresent)),
                  .int32(Int32(merged.pending)), .int32(Int32(merged.conflictsOpened)), .int32(Int32(refusals.count))])
        guard updated == 1 else {
            throw SyncError("staged batch \(batchID) was merged by another process meanwhile; nothing was applied twice")
        }
        if !refusals.isEmpty {
            try conn.execute("""
                INSERT INTO cardsync.refused_lines (batch_id, position, agency_code, line, reason)
                SELECT $1, p, $2, l, r FROM unnest($3::int8[], $4::text[], $5::text[]) AS t(p, l, r)
                """, [.int64(batchID), .text(agency), .int64Array(refusals.map { Int64($0.position) }),
                      .textArray(refusals.map(\.line)), .textArray(refusals.map(\.reason))])
        }
        try conn.execute("DELETE FROM cardsync.staged_lines WHERE batch_id = $1", [.int64(batchID)])
        try conn.execute("SELECT pg_notify('cardsync_merged', $1)", [.text(agency)])
        CrashPoint.reach("merge-before-commit")
    }
}
