import CardCore
import CardDatabase
import Foundation
import Logging
import PostgresClient

/// Knobs of `cardsync reconcile`.
public struct ReconcileOptions: Sendable {
    /// Re-push events the centre lacks and append decisions the inbox lacks.
    public var repair = false
    /// Buckets per digest (a power of two). 1024 keeps the digest exchange at a few tens of
    /// kilobytes at most, while a single lost event costs one bucket's ids (1/1024 of the agency).
    public var bucketCount = 1024
    /// Wait this long for a sync of the same queue or agency to finish; nil fails at once.
    public var lockWait: Duration? = nil
    /// Outbox lines read, and events merged, per batch.
    public var batchSize = 20_000
    /// How long a repair with an agency's own role waits for the bureau's merge of what it re-pushed.
    public var mergeWait: Duration = .seconds(10)
    /// The machine's clock (for `occurred_in_future`, as in sync).
    public var clock: @Sendable () -> Timestamp = { .now }

    public init() {}
}

/// `cardsync reconcile` for one agency queue: compares what the queue holds (outbox and inbox)
/// with what the central database holds for the agency, without transferring everything, and
/// with `repair` brings the two back together (lifecycle.md, "Divergence").
///
/// How: both sides reduce a set of event ids to per-bucket digests (count and XOR of a 64-bit
/// hash, see `ReconcileSQL`); the centre computes its digests in one set-based query each, so
/// agreeing sides exchange only the digests. For buckets that differ, the centre sends the ids
/// in them and the sides compare those sets exactly. Two pairs of sets are compared:
/// - the agency's valid, synced outbox events ⟷ the ledger's events recorded by the agency;
/// - the agency's inbox entries ⟷ the decisions delivered to it (`cardsync.deliveries`).
///
/// Repair, under the queue lock and the centre's per-agency sync lock (no sync of the agency
/// runs meanwhile):
/// - missing events are pushed by reconcile itself through `CentralMerge` (sync would skip them:
///   their seq is at or below the centre's `pushed_seq`), in outbox order; the centre's
///   `pushed_seq` then moves up (never down) to the greatest seq the checkpoint covers, since
///   the centre now holds every event up to it, so the next sync continues where it was;
/// - missing decisions are appended to inbox.jsonl in delivery order, after the checkpoint's
///   inbox size (cutting a crashed sync's leftovers first, as sync does), and the checkpoint
///   records the new inbox size and, as pull cursor, the last delivery id the centre holds for
///   the agency; the centre's cursor moves to the same. A later sync therefore pulls only newer
///   deliveries and appends nothing twice. When the inbox holds decisions the centre lost, the
///   checkpoint keeps its (higher) cursor and guards the inbox (`unconfirmedInboxSize`): until
///   the centre holds every inbox event again, pulls skip events the inbox already has, so a
///   bureau re-recording the lost decisions does not duplicate them.
/// - decisions the centre lacks and events only the centre has are reported, never changed.
public final class AgencyReconcile {
    let queue: QueueDirectory
    let connection: Connection
    let options: ReconcileOptions
    let logger: Logger

    public init(queue: QueueDirectory, connection: Connection, options: ReconcileOptions = ReconcileOptions(),
                logger: Logger) {
        self.queue = queue
        self.connection = connection
        self.options = options
        self.logger = logger
    }

    public func run() throws -> AgencyReconcileResult {
        let started = ContinuousClock.now
        let session = try QueueSession(queue: queue, connection: connection, lockWait: options.lockWait)
        defer { session.close() }
        let agency = session.agency
        let role = session.role
        var result = AgencyReconcileResult(agencyCode: agency.code)
        result.bucketCount = options.bucketCount
        let centreFunctions = session.centre

        guard var checkpoint = try queue.loadCheckpoint() else {
            result.neverSynced = true
            result.seconds = (ContinuousClock.now - started).seconds
            return result
        }
        // Comparing with another central database would "repair" it with this queue's history.
        let centre = try CentreIdentity.read(on: connection)
        if let known = checkpoint.centreID, known != centre {
            throw SyncError.otherCentre(queue: queue.path, known: known, found: centre)
        }
        let now = options.clock()
        // The queue is read on another thread while the centre computes its totals.
        let (queue, bucketCount, batchSize, snapshot) = (queue, options.bucketCount, options.batchSize, checkpoint)
        let reading = BackgroundWork {
            try LocalHoldings.read(queue, checkpoint: snapshot, bucketCount: bucketCount, now: now, batchSize: batchSize)
        }
        let central: CentralSyncState
        let totals: (events: BucketDigest, decisions: BucketDigest)
        do {
            central = try centreFunctions.position()
            totals = try centralTotals(agency.code, bytes: &result.bytesReceived)
        } catch {
            _ = reading.wait()
            throw error
        }
        logger.debug("central totals", metadata: ["agency": "\(agency.code)", "ms": "\(Self.ms(since: started))"])
        let local = try reading.wait().get()
        logger.debug("read the queue", metadata: ["agency": "\(agency.code)", "ms": "\(Self.ms(since: started))"])
        result.agencyEvents = local.events.count
        result.agencyDecisions = local.decisions.count

        try compareEvents(agency.code, local: local, checkpoint: checkpoint, total: totals.events, result: &result)
        let decisions = try compareDecisions(agency.code, local: local, checkpoint: checkpoint, central: central,
                                             total: totals.decisions)
        result.decisionsMissingAtAgency = decisions.missing
        result.decisionsUnknownCentrally = decisions.unknown
        result.decisionsNotYetPulled = decisions.notYetPulled
        result.centralDecisions = decisions.centralCount
        result.bytesReceived += decisions.bytes
        result.differingBuckets += decisions.differingBuckets
        logger.debug("compared", metadata: ["agency": "\(agency.code)", "ms": "\(Self.ms(since: started))"])

        if options.repair {
            var staging: StagingClient?
            if case .agency = role {
                staging = StagingClient(connection: connection, agency: agency.code)
            } else {
                try AgencyRegistry(connection: connection).ensureRegistered(agency)
            }
            result.pushed = try repairPush(agency.code, local: local, checkpoint: checkpoint, central: central,
                                           missing: result.eventsMissingCentrally, now: now, staging: staging)
            result.pulled = try repairPull(session, local: local, checkpoint: &checkpoint, central: central)
        }
        result.seconds = (ContinuousClock.now - started).seconds
        return result
    }

    private var mask: PostgresValue { .int64(Int64(options.bucketCount - 1)) }

    /// The digests of the agency's whole sets of events and decisions, from one snapshot.
    private func centralTotals(_ code: String, bytes: inout Int) throws -> (events: BucketDigest, decisions: BucketDigest) {
        var received = 0
        let totals = try connection.withTransaction(isolation: .repeatableRead) { conn in
            func total(_ sql: PostgresQuery) throws -> BucketDigest {
                let rows = try conn.query(sql, [.text(code)])
                received += Self.wireBytes(rows)
                guard let row = rows.first else { return BucketDigest() }
                return BucketDigest(count: try row.decode(Int64.self, column: "n"), xor: try row.decode(Int64.self, column: "x"))
            }
            return (events: try total(ReconcileSQL.eventTotal), decisions: try total(ReconcileSQL.decisionTotal))
        }
        bytes += received
        return totals
    }

    // MARK: Events

    private func compareEvents(_ code: String, local: LocalHoldings, checkpoint: SyncCheckpoint, total: BucketDigest,
                               result: inout AgencyReconcileResult) throws {
        let localDigest = local.events.digest
        if localDigest.total == total {
            result.centralEvents = Int(total.count)
            return
        }
        var bytes = 0
        try connection.withTransaction(isolation: .repeatableRead) { conn in
            let rows = try conn.query(ReconcileSQL.eventDigest, [.text(code), mask])
            bytes += Self.wireBytes(rows)
            let centralDigest = try Self.digest(rows, bucketCount: options.bucketCount)
            result.centralEvents = Int(centralDigest.totalCount)
            let differing = localDigest.differingBuckets(centralDigest)
            result.differingBuckets += differing.count
            guard !differing.isEmpty else { return }

            let idRows = try conn.query(ReconcileSQL.eventsInBuckets, [.text(code), mask, .int64Array(differing.map(Int64.init))])
            bytes += Self.wireBytes(idRows)
            var centralIDs: Set<UUID> = []
            for row in idRows { centralIDs.insert(try row.decode(UUID.self, column: "event_id")) }
            let localEntries = local.events.entries(inBuckets: Set(differing))
            let localIDs = Set(localEntries.map(\.id))
            result.eventsOnlyCentral = centralIDs.subtracting(localIDs).sorted { $0.uuidString < $1.uuidString }

            let candidates = localEntries.filter { !centralIDs.contains($0.id) }.sorted { $0.info.lineNumber < $1.info.lineNumber }
            guard !candidates.isEmpty else { return }
            // Held under another agency or other content: an event_id_reuse conflict, not a loss.
            let known = try conn.query(ReconcileSQL.ledgerEventsByID, [.text(code), .uuidArray(candidates.map(\.id))])
            bytes += Self.wireBytes(known)
            var elsewhere: Set<UUID> = []
            for row in known { elsewhere.insert(try row.decode(UUID.self, column: "event_id")) }
            for c in candidates {
                let ref = AgencyReconcileResult.OutboxEventRef(eventID: c.id, seq: c.info.seq, line: c.info.lineNumber)
                if elsewhere.contains(c.id) {
                    result.eventsRecordedAsReuse.append(ref)
                } else if c.info.lineNumber <= checkpoint.outboxLine {
                    result.eventsMissingCentrally.append(ref)
                } else {
                    result.eventsNotYetSynced += 1
                }
            }
        }
        result.bytesReceived += bytes
    }

    // MARK: Decisions

    struct DecisionComparison {
        var missing: [AgencyReconcileResult.DecisionRef] = []
        var unknown: [AgencyReconcileResult.DecisionRef] = []
        var notYetPulled = 0
        /// Every decision the inbox lacks (missing and not yet pulled), in delivery order, with
        /// its ledger row, when `fetchRows` was asked for.
        var rowsToPull: [(deliveryID: Int64, event: LedgerEvent)] = []
        var lastDelivery: Int64 = 0
        var centralCount = 0
        var differingBuckets = 0
        var bytes = 0
    }

    private func compareDecisions(_ code: String, local: LocalHoldings, checkpoint: SyncCheckpoint,
                                  central: CentralSyncState, total: BucketDigest? = nil,
                                  fetchRows: Bool = false) throws -> DecisionComparison {
        var out = DecisionComparison()
        let localDigest = local.decisions.digest
        if let total, localDigest.total == total {
            out.centralCount = Int(total.count)
            return out
        }
        try connection.withTransaction(isolation: .repeatableRead) { conn in
            let rows = try conn.query(ReconcileSQL.decisionDigest, [.text(code), mask])
            out.bytes += Self.wireBytes(rows)
            let centralDigest = try Self.digest(rows, bucketCount: options.bucketCount)
            out.centralCount = Int(centralDigest.totalCount)
            let differing = localDigest.differingBuckets(centralDigest)
            out.differingBuckets = differing.count
            guard !differing.isEmpty else { return }

            let idRows = try conn.query(ReconcileSQL.decisionsInBuckets, [.text(code), mask, .int64Array(differing.map(Int64.init))])
            out.bytes += Self.wireBytes(idRows)
            var centralIDs: [UUID: Int64] = [:]
            for row in idRows {
                centralIDs[try row.decode(UUID.self, column: "event_id")] = try row.decode(Int64.self, column: "delivery_id")
            }
            let localEntries = local.decisions.entries(inBuckets: Set(differing))
            for e in localEntries where centralIDs[e.id] == nil {
                out.unknown.append(.init(eventID: e.id, applicationID: e.info.applicationID, type: e.info.type.rawValue,
                                         deliveryID: nil, ledgerID: e.info.ledgerID))
            }
            out.unknown.sort { ($0.ledgerID ?? 0) < ($1.ledgerID ?? 0) }
            let lacking = centralIDs.filter { !local.decisions.contains($0.key) }
            guard !lacking.isEmpty else { return }

            let fullRows = try AgencyFunctions(connection: conn, agency: code)
                .deliveryRows(after: 0, limit: Int(Int32.max), eventIDs: Array(lacking.keys))
            out.bytes += Self.wireBytes(fullRows)
            let full = try fullRows.map(AgencyFunctions.decodeDelivery)
            // Both sides agree on the pull cursor: what lies beyond it is simply not pulled yet.
            let cursor = checkpoint.pulledDelivery ?? 0
            let aligned = cursor == central.pulledDelivery
            for (deliveryID, event) in full {
                if aligned && deliveryID > cursor {
                    out.notYetPulled += 1
                } else {
                    out.missing.append(.init(eventID: event.eventID, applicationID: event.applicationID,
                                             type: event.type.rawValue, deliveryID: deliveryID, ledgerID: nil))
                }
                if fetchRows { out.rowsToPull.append((deliveryID, event)) }
            }
            if fetchRows {
                out.lastDelivery = try AgencyFunctions(connection: conn, agency: code).lastDelivery()
            }
        }
        return out
    }

    // MARK: Repair

    /// Pushes the events the centre lacks, in outbox order, then raises the centre's
    /// `pushed_seq` to what the checkpoint covers.
    /// With an agency's own role (`staging`), the events are staged and the bureau's merge
    /// applies them; reconcile waits for it like a sync (`mergeWait`).
    private func repairPush(_ code: String, local: LocalHoldings, checkpoint: SyncCheckpoint, central: CentralSyncState,
                            missing: [AgencyReconcileResult.OutboxEventRef], now: Timestamp,
                            staging: StagingClient?) throws -> MergeResult {
        var merged = MergeResult()
        if !missing.isEmpty {
            var wanted = Set(missing.map(\.eventID))
            var batch: [LedgerEvent] = []
            var lines: [String] = []
            var firstStaged: Int64?
            let merge = CentralMerge(connection: connection, logger: logger)
            func flush() throws {
                guard !batch.isEmpty else { return }
                if let staging {
                    let id = try staging.stage(lines: lines, maxSeq: batch.map(\.seq!).max()!)
                    firstStaged = firstStaged ?? id
                } else {
                    merged = merged + (try merge.merge(batch, agency: code, pushedSeq: nil, now: options.clock()))
                }
                batch.removeAll(keepingCapacity: true)
                lines.removeAll(keepingCapacity: true)
            }
            let quarantined = try LocalHoldings.quarantinedLines(queue, upTo: checkpoint.quarantineSize)
            try LocalHoldings.forEachValidEvent(queue, quarantined: quarantined, now: now, batchSize: options.batchSize) { event, line in
                guard wanted.remove(event.eventID) != nil else { return }
                batch.append(LedgerEvent(queueEvent: event, agency: code))
                if staging != nil { lines.append(String(decoding: line, as: UTF8.self)) }
                if batch.count >= options.batchSize { try flush() }
            }
            try flush()
            if let staging, let firstStaged {
                if try !staging.waitForMerge(after: firstStaged - 1, wait: options.mergeWait) {
                    logger.notice("the bureau's merge has not applied all re-pushed events yet; they are stored centrally",
                                  metadata: ["agency": "\(code)"])
                }
                let taken = try staging.takeResults()
                merged = merged + taken.merged
            }
            merged.ledgerIDs = []
            logger.notice("reconcile pushed events the central database lacked",
                          metadata: ["agency": "\(code)", "pushed": "\(merged.accepted)", "already_present": "\(merged.alreadyPresent)"])
        }
        if let seq = local.syncedMaxSeq, seq > central.pushedSeq {
            try AgencyFunctions(connection: connection, agency: code).raisePushedSeq(to: seq)
        }
        return merged
    }

    /// Appends the decisions the inbox lacks (compared again: the push may have delivered new
    /// conflict events), in delivery order, and moves both pull cursors.
    private func repairPull(_ session: QueueSession, local: LocalHoldings, checkpoint: inout SyncCheckpoint,
                            central: CentralSyncState) throws -> Int {
        let code = session.agency.code
        let comparison = try compareDecisions(code, local: local, checkpoint: checkpoint, central: central, fetchRows: true)
        if !comparison.unknown.isEmpty {
            // The centre lost decisions this inbox holds: guard the inbox against their coming
            // again (a bureau re-import), as a sync does when it finds the centre behind it.
            checkpoint.unconfirmedInboxSize = max(checkpoint.unconfirmedInboxSize ?? 0, checkpoint.inboxSize)
        }
        guard !comparison.rowsToPull.isEmpty else {
            if !comparison.unknown.isEmpty { try queue.saveCheckpoint(checkpoint) }
            return 0
        }
        let inbox = try session.openInbox(after: checkpoint)
        defer { inbox.close() }
        for (_, event) in comparison.rowsToPull { inbox.append(InboxLine(event: event)) }
        let last = comparison.lastDelivery
        // The centre's cursor moves to its last delivery; ours stays higher while the centre
        // lacks decisions we hold, so that the next sync pulls with its dedupe.
        try session.commitInbox(inbox, through: comparison.unknown.isEmpty ? last : max(checkpoint.pulledDelivery ?? 0, last),
                                centreCursor: last, checkpoint: &checkpoint, now: options.clock())
        return comparison.rowsToPull.count
    }

    // MARK: Helpers

    static func ms(since start: ContinuousClock.Instant) -> Int { Int((ContinuousClock.now - start).seconds * 1000) }

    static func digest(_ rows: QueryResult, bucketCount: Int) throws -> EventIDDigest {
        var d = EventIDDigest(bucketCount: bucketCount)
        for row in rows {
            d.buckets[try row.decode(Int.self, column: "bucket")] =
                BucketDigest(count: try row.decode(Int64.self, column: "n"), xor: try row.decode(Int64.self, column: "x"))
        }
        return d
    }

    /// Bytes the rows took on the wire (text protocol DataRow messages: a 7-byte header per row,
    /// 4 bytes of length per field, then the value).
    static func wireBytes(_ rows: QueryResult) -> Int {
        let fields = rows.columns.count
        var total = 0
        for row in rows {
            total += 7 + 4 * fields
            for i in 0..<fields { total += (try? row.decode(CellLength.self, at: i))?.bytes ?? 0 }
        }
        return total
    }

    private struct CellLength: PostgresDecodable {
        var bytes: Int
        static func decode(postgresText bytes: UnsafeBufferPointer<UInt8>, type: PostgresType) -> CellLength? {
            CellLength(bytes: bytes.count)
        }
        static var nullValue: CellLength? { CellLength(bytes: 0) }
    }
}
