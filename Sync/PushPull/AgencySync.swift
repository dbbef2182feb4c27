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
    /// Its argument says whether this sync stages (the next queue's first batch then keeps its lines).
    var onLastBatch: ((Bool) -> Void)?

    public init(queue: QueueDirectory, connection: Connection, projection: Connection? = nil,
                options: SyncOptions = SyncOptions(),
                logger: Logger, progress: ((Int64, Int64) -> Void)? = nil) {
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
        let session = try QueueSession(queue: queue, connection: connection, lockWait: options.lockWait)
        defer { session.close() }
        let agency = session.agency
        var result = AgencySyncResult(agencyCode: agency.code)
        let staging = try chooseStaging(for: agency, role: session.role)
        clock.lap("role")

        var start = try startingPoint()
        let quarantine = try QuarantineWriter(url: queue.quarantineFile)
        defer { quarantine.close() }
        // Undo appends made after the last checkpoint by a process that died before moving it.
        if try quarantine.size() > start.checkpoint.quarantineSize {
            try quarantine.truncate(toSize: start.checkpoint.quarantineSize)
        }
        start.checkpoint.quarantineSize = try quarantine.size()

        let central = try session.centre.position()
        try checkCentre(&start, agency: agency)
        var checkpoint = start.checkpoint
        clock.lap("setup")
        let firstStaged = try push(agency: agency, central: central, start: start, checkpoint: &checkpoint,
                                   quarantine: quarantine, staging: staging, result: &result, clock: &clock)
        if let staging { try collectMergeResults(staging, firstStaged: firstStaged, result: &result) }
        clock.lap("merge-wait")
        try expirePending(agency: agency.code, staged: staging != nil, result: &result)
        clock.lap("expired")
        try pull(session, central: central, start: start, checkpoint: &checkpoint, result: &result)
        // A queue whose state.json did not name this centre yet (first sync after an upgrade, a
        // rebuilt checkpoint) records it even when there was nothing to push or pull.
        if start.recordCentre { try queue.saveCheckpoint(checkpoint) }
        clock.lap("pull")
        result.seconds = (ContinuousClock.now - started).seconds
        logger.debug("synced agency", metadata: ["agency": "\(agency.code)", "phases": "\(clock.summary)"])
        return result
    }

    // MARK: Which path

    /// An agency's own role stages (nil: the owner or a bureau role, which merge in-process).
    /// The in-process path first applies what this agency staged before, so its order holds.
    private func chooseStaging(for agency: Agency, role: SessionRole) throws -> StagingClient? {
        switch role {
        case .agency:
            // QueueSession made sure the role is this agency's.
            return StagingClient(connection: connection, agency: agency.code)
        case .bureau:
            try AgencyRegistry(connection: connection).ensureRegistered(agency)
            // Also with nothing new to push: a sync that says it is done leaves a current projection.
            try ProjectionWatermark.repairIfBehind(on: connection, logger: logger)
            try StagedBatchMerger(connection: connection, projection: projection, logger: logger,
                                  pendingHorizonSeconds: options.pendingHorizonSeconds)
                .mergeAll(agency: agency.code)
            return nil
        }
    }

    /// Waits up to `--merge-wait` for the bureau's merge of this run's batches, then adds what
    /// the merge made of every batch of this agency not reported yet (earlier runs' too).
    private func collectMergeResults(_ staging: StagingClient, firstStaged: Int64?, result: inout AgencySyncResult) throws {
        if let firstStaged, options.mergeWait > .zero {
            if try !staging.waitForMerge(after: firstStaged - 1, wait: options.mergeWait) {
                logger.notice("the bureau's merge has not applied all of this sync's events yet; they are stored centrally and count as unmerged",
                              metadata: ["agency": "\(staging.agency)"])
            }
        }
        let taken = try staging.takeResults()
        result.pushed += taken.merged.accepted
        result.alreadyPresent += taken.merged.alreadyPresent
        result.pending += taken.merged.pending
        result.conflictsOpened += taken.merged.conflictsOpened
        result.unmerged = taken.unmerged
        result.staged = true
        if taken.refused > 0 {
            logger.warning("the bureau's merge refused staged lines that do not pass the queue rules; the bureau keeps them in cardsync.refused_lines",
                           metadata: ["agency": "\(staging.agency)", "lines": "\(taken.refused)"])
        }
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

    /// Pushes the outbox from the checkpoint on: merged in-process, or staged (`staging`).
    /// Returns the first batch id staged (nil: none, or merged in-process).
    private func push(agency: Agency, central: CentralSyncState, start: StartingPoint, checkpoint: inout SyncCheckpoint,
                      quarantine: QuarantineWriter, staging: StagingClient?, result: inout AgencySyncResult,
                      clock: inout PhaseClock) throws -> Int64? {
        var firstStaged: Int64?
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
        if let prefetch, !restored, !start.rebuilt, prefetch.matches(agency: agency.code, checkpoint: checkpoint),
           prefetch.preparer.keepsLines == (staging != nil) {
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
                                     keepLines: staging != nil, clock: options.clock)
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
                onLastBatch(staging != nil)
            }
            for (line, reason) in batch.quarantined { quarantine.append(line, reason: reason) }
            result.quarantined += batch.quarantined.count
            if let staging, let maxSeq = batch.maxSeq {
                // Durable once this returns: the checkpoint below may move past these lines.
                CrashPoint.reach("before-stage")
                let id = try staging.stage(lines: batch.lines, maxSeq: maxSeq)
                CrashPoint.reach("after-stage")
                firstStaged = firstStaged ?? id
                clock.lap("stage")
            } else if !batch.events.isEmpty {
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
            CrashPoint.reach("after-checkpoint")
            clock.lap("checkpoint")
            progress?(batch.endOffset, total)
        }
        return firstStaged
    }

    /// The merge's expiry sweep (this sync merges in-process), then the `pending_expired`
    /// conflicts concerning this agency that no sync of it has reported yet, whichever merge
    /// opened them: they count as this sync's opened conflicts (`--strict` sees them).
    /// A staging sync only reports: the bureau's merge sweeps.
    private func expirePending(agency: String, staged: Bool, result: inout AgencySyncResult) throws {
        if staged {
            result.conflictsOpened += try AgencyFunctions(connection: connection, agency: agency).takeExpiredReports()
            return
        }
        result.conflictsOpened += try PendingExpiry.sweepAndTakeUnreported(
            for: agency, horizonSeconds: options.pendingHorizonSeconds, on: connection)
    }

    // MARK: Pull

    private func pull(_ session: QueueSession, central: CentralSyncState, start: StartingPoint,
                      checkpoint: inout SyncCheckpoint, result: inout AgencySyncResult) throws {
        let centre = session.centre
        let inbox = try session.openInbox(after: checkpoint)
        defer { inbox.close() }
        var cursor = checkpoint.pulledDelivery ?? 0
        // The centre is behind this queue's cursor (restored from an older backup) or is another
        // centre: what the inbox holds may come again under new delivery ids, now or after the
        // bureau re-imports its decisions. Guard the whole inbox until the centre holds it again.
        if central.pulledDelivery < cursor || start.movedCentre {
            checkpoint.unconfirmedInboxSize = max(checkpoint.unconfirmedInboxSize ?? 0, checkpoint.inboxSize)
        }
        var guarded: Set<UUID>?
        var seen: Set<UUID>?
        if central.pulledDelivery != cursor || start.rebuilt || start.movedCentre {
            // The centre was restored (it is behind us), our checkpoint was lost (we are behind
            // it) or the queue moved centre: start from the lower cursor and skip what the inbox
            // already holds.
            seen = Set(try InboxReader.readAll(from: queue.inboxFile).map(\.eventID))
            cursor = min(cursor, central.pulledDelivery)
        }
        /// What to skip: read only when there is something to pull (most syncs read no inbox).
        func skipping() throws -> Set<UUID>? {
            if seen == nil, let size = checkpoint.unconfirmedInboxSize {
                guarded = try guarded ?? InboxReader.eventIDs(of: queue.inboxFile, upTo: size)
                seen = guarded
            }
            return seen
        }
        while true {
            let page = try connection.withTransaction { conn in
                try KeyedPlans.require(on: conn)
                return try centre.deliveries(after: cursor, limit: options.pullPageSize)
            }
            if page.isEmpty { break }
            let skip = try skipping()
            for (deliveryID, event) in page {
                cursor = deliveryID
                if skip?.contains(event.eventID) == true { continue }
                inbox.append(InboxLine(event: event))
                result.pulled += 1
            }
            try session.commitInbox(inbox, through: cursor, checkpoint: &checkpoint, now: options.clock())
        }
        try confirmInbox(centre, checkpoint: &checkpoint, guarded: guarded)
        // Always, also with nothing new: the centre's cursor is aligned with ours (it may be ahead
        // after a lost checkpoint) and `last_pull_at` records the end of this successful sync,
        // which `cardsync status` reports as the agency's last sync.
        try centre.recordPull(through: cursor)
    }

    /// Lifts the restore guard once the centre has delivered every event of the guarded inbox
    /// prefix again: nothing it holds can then come a second time.
    private func confirmInbox(_ centre: AgencyFunctions, checkpoint: inout SyncCheckpoint, guarded: Set<UUID>?) throws {
        guard let size = checkpoint.unconfirmedInboxSize else { return }
        let ids = try guarded ?? InboxReader.eventIDs(of: queue.inboxFile, upTo: size)
        let missing = ids.count - (try centre.delivered(ids).count)
        if missing == 0 {
            checkpoint.unconfirmedInboxSize = nil
            logger.info("the central database holds every event of the inbox again; pulls no longer compare with it",
                        metadata: ["agency": "\(centre.agency)"])
        } else {
            logger.debug("inbox events the central database does not hold (yet)",
                         metadata: ["agency": "\(centre.agency)", "events": "\(missing)"])
        }
        checkpoint.updatedAt = options.clock()
        try queue.saveCheckpoint(checkpoint)
    }
}

extension LedgerEvent {
    /// An outbox event on its way to the ledger (its ledger id is assigned by the merge).
    init(queueEvent e: QueueEvent, agency: String) {
        self.init(ledgerID: 0, eventID: e.eventID, applicationID: e.applicationID, type: e.type,
                  agencyCode: agency, seq: e.seq, occurredAt: e.occurredAt, data: e.data)
    }
}
