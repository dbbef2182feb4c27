import CardCore
import CardDatabase
import Foundation
import Logging
import PostgresClient

/// One agency queue's sync: push new outbox events, then pull decisions into the inbox.
///
/// Crash safety comes from the order of writes. Sync-owned files are cut back to the sizes in
/// the last checkpoint before anything else; a batch's events, the agency's central high-water
/// mark and its conflicts commit in one transaction; quarantine lines are appended and the
/// checkpoint moved only after that commit. A process killed anywhere in between re-reads the
/// same lines next time, and the centre recognises what it already has by event_id, so nothing
/// is lost and nothing applied twice. (`pushed_seq` only tells a restored centre from a live one.)
public final class AgencySync {
    let queue: QueueDirectory
    let connection: Connection
    /// A second connection to the same database for the projection's writes (see
    /// `CentralMerge`); without it the merge writes everything on `connection`.
    let projection: Connection?
    let options: SyncOptions
    let logger: Logger
    /// Called with (bytes of the outbox processed, outbox size) as batches complete.
    var progress: ((Int64, Int64) -> Void)?
    /// The queue's first batch, prepared ahead by the runner (used if still valid).
    var prefetch: FirstBatchPrefetch?
    /// Called once, on this thread, when the last batch of the outbox has been read: the runner
    /// starts reading the next queue then, so that no more than two batches are held at once.
    var onLastBatch: (() -> Void)?

    public init(queue: QueueDirectory, connection: Connection, projection: Connection? = nil,
                options: SyncOptions = SyncOptions(),
                logger: Logger = Logger(label: "cardsync.sync"), progress: ((Int64, Int64) -> Void)? = nil) {
        self.queue = queue
        self.connection = connection
        self.projection = projection
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    public func run() throws -> AgencySyncResult {
        let started = ContinuousClock.now
        var clock = PhaseClock()
        // A prefetch that push did not adopt is dropped whatever happens (its file closed).
        defer {
            prefetch?.drop()
            prefetch = nil
        }
        let agency = try queue.readAgency()
        var result = AgencySyncResult(agencyCode: agency.code)
        let lock = try QueueLock.acquire(queue, timeout: options.lockWait)
        defer { lock.release() }
        try MergeLocks.lockAgency(agency.code, on: connection, wait: options.lockWait)
        defer { MergeLocks.unlockAgency(agency.code, on: connection) }
        try AgencyRegistry(connection: connection).ensureRegistered(agency)
        // Also with nothing new to push: a sync that says it is done leaves a current projection.
        try ProjectionWatermark.repairIfBehind(on: connection, logger: logger)

        var start = try startingPoint()
        let quarantine = try QuarantineWriter(url: queue.quarantineFile)
        defer { quarantine.close() }
        // Undo appends made after the last checkpoint by a process that died before moving it.
        if try quarantine.size() > start.checkpoint.quarantineSize {
            try quarantine.truncate(toSize: start.checkpoint.quarantineSize)
        }
        start.checkpoint.quarantineSize = try quarantine.size()

        let central = try CentralSyncState.load(agency: agency.code, on: connection)
        try checkCentre(&start, agency: agency)
        var checkpoint = start.checkpoint
        clock.lap("setup")
        try push(agency: agency, central: central, start: start, checkpoint: &checkpoint, quarantine: quarantine,
                 result: &result, clock: &clock)
        try expirePending(agency: agency.code, result: &result)
        clock.lap("expired")
        try pull(agency: agency, central: central, start: start, checkpoint: &checkpoint, result: &result)
        // A queue whose state.json did not name this centre yet (first sync after an upgrade, a
        // rebuilt checkpoint) records it even when there was nothing to push or pull.
        if start.recordCentre { try queue.saveCheckpoint(checkpoint) }
        clock.lap("pull")
        result.seconds = (ContinuousClock.now - started).seconds
        logger.debug("synced agency", metadata: ["agency": "\(agency.code)", "phases": "\(clock.summary)"])
        return result
    }

    // MARK: Where to start

    /// The checkpoint a sync starts from, and what it says about the queue's history.
    struct StartingPoint {
        var checkpoint: SyncCheckpoint
        /// state.json was missing or unreadable: the checkpoint was rebuilt from the files.
        var rebuilt = false
        /// Outbox lines quarantine.jsonl already holds (only when the outbox is read again).
        var linesAlreadyQuarantined = 0
        /// The queue moved to another central database (`--new-centre`): everything is pushed.
        var movedCentre = false
        /// state.json does not name this centre yet: save it at the end whatever happened.
        var recordCentre = false
    }

    /// The last checkpoint, or one rebuilt from the queue's files when state.json is missing or
    /// unreadable: the inbox and quarantine are never cut to nothing (`CheckpointRecovery`).
    private func startingPoint() throws -> StartingPoint {
        let loaded = Result { () throws(QueueError) -> SyncCheckpoint? in try queue.loadCheckpoint() }
        var unreadable: QueueError?
        switch loaded {
        case .success(let checkpoint?):
            return StartingPoint(checkpoint: checkpoint)
        case .success(nil):
            unreadable = nil
        case .failure(let error):
            guard error.code == .badState else { throw error }
            unreadable = error
        }
        let recovery = try CheckpointRecovery.rebuild(queue, unreadable: unreadable)
        // A queue that never synced has nothing to recover: its first sync starts from the
        // beginning like any first sync (and may use the batch the runner read ahead).
        if unreadable == nil && recovery.checkpoint == .initial && recovery.linesAlreadyQuarantined == 0 {
            return StartingPoint(checkpoint: .initial)
        }
        logger.warning("rebuilding the sync checkpoint from the queue's files; every inbox and quarantine line is kept",
                       metadata: ["queue": "\(queue.path)", "reason": "\(recovery.reason)"])
        return StartingPoint(checkpoint: recovery.checkpoint, rebuilt: true,
                             linesAlreadyQuarantined: recovery.linesAlreadyQuarantined)
    }

    /// Refuses a central database other than the one this queue synced with before, unless the
    /// operator says the agency moved (`--new-centre`). A restore from the same centre's backup
    /// keeps its id and passes; so does a queue whose checkpoint predates centre ids.
    private func checkCentre(_ start: inout StartingPoint, agency: Agency) throws {
        let centre = try CentreIdentity.read(on: connection)
        defer { start.checkpoint.centreID = centre }
        guard let known = start.checkpoint.centreID else {
            start.recordCentre = true
            return
        }
        guard known != centre else { return }
        guard options.acceptNewCentre else { throw SyncError.otherCentre(queue: queue.path, known: known, found: centre) }
        logger.warning("this queue synced with another central database before; pushing every outbox event to this one",
                       metadata: ["agency": "\(agency.code)"])
        start.movedCentre = true
        start.recordCentre = true
        start.linesAlreadyQuarantined = start.checkpoint.outboxLine
        start.checkpoint.pulledDelivery = nil
    }

    // MARK: Push

    private func push(agency: Agency, central: CentralSyncState, start: StartingPoint, checkpoint: inout SyncCheckpoint,
                      quarantine: QuarantineWriter, result: inout AgencySyncResult, clock: inout PhaseClock) throws {
        // The centre lacks events this queue pushed before: it was restored from an older backup.
        let restored = start.movedCentre || central.pushedSeq < (checkpoint.pushedSeq ?? 0)
        if restored && !start.movedCentre {
            logger.warning("the central database lacks events this queue pushed before (restored from a backup?); pushing them again",
                           metadata: ["agency": "\(agency.code)", "central_seq": "\(central.pushedSeq)",
                                      "local_seq": "\(checkpoint.pushedSeq ?? 0)"])
        }
        let reader: OutboxReader
        let preparer: BatchPreparer
        var next: BatchPreparer.Pending
        if let prefetch, !restored, !start.rebuilt, prefetch.matches(agency: agency.code, checkpoint: checkpoint) {
            reader = prefetch.reader
            preparer = prefetch.preparer
            next = prefetch.first
            self.prefetch = nil
        } else {
            prefetch?.drop()
            prefetch = nil
            reader = try OutboxReader(url: queue.outboxFile,
                                      startOffset: restored ? 0 : checkpoint.outboxOffset,
                                      startLine: restored ? 0 : checkpoint.outboxLine)
            preparer = BatchPreparer(reader: reader, agency: agency.code, batchSize: options.batchSize,
                                     lastSeq: restored ? nil : checkpoint.lastSeq,
                                     linesAlreadyQuarantined: restored ? max(checkpoint.outboxLine, start.linesAlreadyQuarantined)
                                                                       : start.linesAlreadyQuarantined,
                                     clock: options.clock)
            // Reading and validating the next batch overlaps with merging this one (two cores:
            // one parses, the other runs the server).
            next = preparer.prepareInBackground()
        }
        defer { reader.close() }
        let total = (try? FileManager.default.attributesOfItem(atPath: queue.outboxFile.path)[.size] as? Int64) ?? 0
        let merge = CentralMerge(connection: connection, projection: projection, logger: logger)
        // Never leave while a preparation still reads the outbox.
        defer { _ = try? next.wait() }
        while true {
            let batch = try next.wait()
            clock.lap("wait-batch")
            guard let batch else { break }
            next = preparer.prepareInBackground()
            if batch.reachedEnd, let onLastBatch {
                self.onLastBatch = nil
                onLastBatch()
            }
            for (line, reason) in batch.quarantined { quarantine.append(line, reason: reason) }
            result.quarantined += batch.quarantined.count
            if !batch.events.isEmpty {
                try StatisticsKeeper.refreshIfStale(on: connection, logger: logger)
                clock.lap("analyze")
                let merged = try merge.merge(batch.events, agency: agency.code, pushedSeq: batch.maxSeq, now: options.clock())
                result.pushed += merged.accepted
                result.alreadyPresent += merged.alreadyPresent
                result.pending += merged.pending
                result.conflictsOpened += merged.conflictsOpened
                if restored { result.repushedAfterRestore += merged.accepted }
                clock.lap("merge")
            }
            try quarantine.flush()
            checkpoint.outboxOffset = batch.endOffset
            checkpoint.outboxLine = batch.lastLine
            checkpoint.lastSeq = batch.lastSeq
            if let maxSeq = batch.maxSeq { checkpoint.pushedSeq = max(checkpoint.pushedSeq ?? 0, maxSeq) }
            checkpoint.quarantineSize = try quarantine.size()
            checkpoint.updatedAt = options.clock()
            try queue.saveCheckpoint(checkpoint)
            clock.lap("checkpoint")
            progress?(batch.endOffset, total)
        }
    }

    /// The merge's expiry sweep (this sync merges in-process), then the `pending_expired`
    /// conflicts concerning this agency that no sync of it has reported yet, whichever merge
    /// opened them: they count as this sync's opened conflicts (`--strict` sees them).
    private func expirePending(agency: String, result: inout AgencySyncResult) throws {
        result.conflictsOpened += try PendingExpiry.sweepAndTakeUnreported(
            for: agency, horizonSeconds: options.pendingHorizonSeconds, on: connection)
    }

    // MARK: Pull

    private func pull(agency: Agency, central: CentralSyncState, start: StartingPoint, checkpoint: inout SyncCheckpoint,
                      result: inout AgencySyncResult) throws {
        let inbox = try InboxWriter(url: queue.inboxFile)
        defer { inbox.close() }
        if try inbox.size() > checkpoint.inboxSize { try inbox.truncate(toSize: checkpoint.inboxSize) }
        var cursor = checkpoint.pulledDelivery ?? 0
        var seen: Set<UUID>?
        if central.pulledDelivery != cursor || start.rebuilt || start.movedCentre {
            // The centre was restored (it is behind us), our checkpoint was lost (we are behind
            // it) or the queue moved centre: start from the lower cursor and skip what the inbox
            // already holds.
            seen = Set(try InboxReader.readAll(from: queue.inboxFile).map(\.eventID))
            cursor = min(cursor, central.pulledDelivery)
        }
        while true {
            let rows = try connection.withTransaction { conn in
                try KeyedPlans.require(on: conn)
                return try conn.query("""
                SELECT d.delivery_id, l.*
                FROM cardsync.deliveries d
                JOIN (SELECT \(StateLoader.ledgerColumns) FROM cardsync.ledger) l ON l.ledger_id = d.ledger_id
                WHERE d.agency_code = $1 AND d.delivery_id > $2
                ORDER BY d.delivery_id LIMIT $3
                """, [.text(agency.code), .int64(cursor), .int64(Int64(options.pullPageSize))])
            }
            if rows.isEmpty { break }
            for row in rows {
                let event = try StateLoader.decodeLedgerEvent(row)
                cursor = try row.decode(Int64.self, column: "delivery_id")
                if seen?.contains(event.eventID) == true { continue }
                inbox.append(InboxLine(event: event))
                result.pulled += 1
            }
            try inbox.flush()
            checkpoint.inboxSize = try inbox.size()
            checkpoint.pulledDelivery = cursor
            checkpoint.updatedAt = options.clock()
            try queue.saveCheckpoint(checkpoint)
            try connection.execute("""
                INSERT INTO cardsync.agency_sync_state (agency_code, pulled_delivery, last_pull_at) VALUES ($1, $2, now())
                ON CONFLICT (agency_code) DO UPDATE SET pulled_delivery = EXCLUDED.pulled_delivery, last_pull_at = now()
                """, [.text(agency.code), .int64(cursor)])
        }
        if central.pulledDelivery > cursor {
            // Nothing new, but the centre's cursor is ahead of ours (lost checkpoint): align it.
            try connection.execute("UPDATE cardsync.agency_sync_state SET pulled_delivery = $2 WHERE agency_code = $1",
                                   [.text(agency.code), .int64(cursor)])
        }
    }
}

/// The centre's record of one agency's sync.
struct CentralSyncState {
    var pushedSeq: Int64 = 0
    var pulledDelivery: Int64 = 0

    static func load(agency: String, on conn: Connection) throws -> CentralSyncState {
        let rows = try conn.query("SELECT pushed_seq, pulled_delivery FROM cardsync.agency_sync_state WHERE agency_code = $1",
                                  [.text(agency)])
        guard let row = rows.first else { return CentralSyncState() }
        return CentralSyncState(pushedSeq: try row.decode(Int64.self, column: "pushed_seq"),
                                pulledDelivery: try row.decode(Int64.self, column: "pulled_delivery"))
    }
}

extension LedgerEvent {
    /// An outbox event on its way to the ledger (its ledger id is assigned by the merge).
    init(queueEvent e: QueueEvent, agency: String) {
        self.init(ledgerID: 0, eventID: e.eventID, applicationID: e.applicationID, type: e.type,
                  agencyCode: agency, seq: e.seq, occurredAt: e.occurredAt, data: e.data)
    }
}
