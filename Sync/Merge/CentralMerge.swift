import CardCore
import Foundation
import Logging
import PostgresClient

/// Applies a batch of events to the central database: idempotently by event_id, through the
/// lifecycle fold, with conflicts, inbox deliveries and (for an agency push) the agency's
/// high-water mark, all committed together or not at all.
///
/// Under the merge lock it makes a constant number of round trips per batch, whatever its size:
/// one look-up of known event ids, a few look-ups of the touched applications and their pending
/// events (shared between both connections when there are two), binary COPY of the new ledger
/// rows and applications, and set-based updates.
///
/// With a second connection (`projection`), the projection rows are written on it while the
/// ledger rows are written on the first, so the server works on both at once (a bulk sync's two
/// largest writes). The ledger transaction commits first and the projection's right after; the
/// projection watermark, moved in the projection's transaction, lets the next merge find and
/// repair a process that died in between (`ProjectionWatermark`, `ProjectionRebuild`).
public struct CentralMerge {
    let connection: Connection
    let projection: Connection?
    let logger: Logger

    /// `projection`, if given, is a second connection to the same database, used only by this
    /// merge (it writes the projection while `connection` writes the ledger).
    public init(connection: Connection, projection: Connection? = nil,
                logger: Logger) {
        self.connection = connection
        self.projection = projection
        self.logger = logger
    }

    /// Merges `events` (their `ledgerID` is ignored and assigned here). With `agency` and
    /// `pushedSeq`, the agency's central high-water mark moves in the same transaction.
    /// `finish`, if given, runs last inside the ledger's transaction, with what was decided: what
    /// it writes commits with the batch or not at all (a staged batch's outcome).
    public func merge(_ events: [LedgerEvent], agency: String? = nil, pushedSeq: Int64? = nil,
                      now: Timestamp = .now, finish: ((MergeResult, Connection) throws -> Void)? = nil) throws -> MergeResult {
        LedgerWriter.ensurePartitions(on: connection, logger: logger)
        if let projection {
            return try mergeOnTwoConnections(events, agency: agency, pushedSeq: pushedSeq, now: now, projection: projection,
                                             finish: finish)
        }
        for round in 0..<2 {
            do {
                return try connection.withTransaction { conn in
                    try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
                    if try !ProjectionWatermark.read(on: conn).isCurrent { throw ProjectionBehind() }
                    try KeyedPlans.require(on: conn)
                    let decided = try decideAndWrite(events, now: now, on: conn) { decided in
                        try writeLedgerSide(decided, on: conn)
                        try Self.writeProjectionSide(decided, on: conn)
                    }
                    try raiseHighWaterMark(agency: agency, pushedSeq: pushedSeq, on: conn)
                    try finish?(decided.result, conn)
                    return decided.result
                }
            } catch is ProjectionBehind where round == 0 {
                try ProjectionRebuild.run(on: connection, logger: logger)
            }
        }
        throw SyncError("the projection stayed behind the ledger after a rebuild; run cardsync db verify")
    }

    /// The merge with the projection written on the second connection at the same time as the
    /// ledger on the first. The merge lock is taken for the session, so that it covers both
    /// commits: no other merge can start between them.
    private func mergeOnTwoConnections(_ events: [LedgerEvent], agency: String?, pushedSeq: Int64?, now: Timestamp,
                                       projection: Connection,
                                       finish: ((MergeResult, Connection) throws -> Void)?) throws -> MergeResult {
        var clock = PhaseClock()
        try connection.execute("SELECT pg_advisory_lock($1)", [.int64(MergeLocks.merge)])
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1)", [.int64(MergeLocks.merge)]) }
        clock.lap("lock")
        if try !ProjectionWatermark.read(on: connection).isCurrent {
            try ProjectionRebuild.run(on: connection, logger: logger)
        }
        clock.lap("watermark")
        // The projection's transaction; dropped without a commit (an error anywhere) it rolls back.
        var projectionTransaction: Transaction?
        let result = try connection.withTransaction { conn in
            try KeyedPlans.require(on: conn)
            let decided = try decideAndWrite(events, now: now, on: conn) { decided in
                // A second attempt (the careful path) starts the projection's writes afresh.
                projectionTransaction?.rollback()
                // The projection's commit waits for its WAL like the ledger's: a sync that
                // says it is done must leave reports, conflicts and bureau commands reading
                // what it merged, even after a server crash right after it (issue #10).
                projectionTransaction = try Transaction(on: projection)
                try KeyedPlans.require(on: projection)
                clock.lap("decide")
                try writeBothSidesAtOnce(decided, ledger: conn, projection: projection)
                clock.lap("write")
            }
            try raiseHighWaterMark(agency: agency, pushedSeq: pushedSeq, on: conn)
            try finish?(decided.result, conn)
            return decided.result
        }
        clock.lap("ledger-commit")
        CrashPoint.reach("merge-between-commits")
        // The ledger is committed. Should this commit fail or never happen, the watermark stays
        // behind and the next merge rebuilds the projection from the ledger.
        do {
            try projectionTransaction?.commit()
        } catch let error as PostgresError where error.isRetryable {
            // Kept as the connection error it is, so that `sync --retry` and `merge --follow`
            // reconnect: their next attempt finds the watermark behind and rebuilds the projection.
            logger.warning("the batch's events are stored, but its projection commit was lost; the next attempt rebuilds the projection from the ledger",
                           metadata: ["error": "\(error)"])
            throw error
        } catch {
            throw SyncError("the batch's events are stored, but its projection rows could not be committed (\(error)); the next sync rebuilds the projection from the ledger",
                            cause: error)
        }
        clock.lap("projection-commit")
        logger.debug("merged batch", metadata: ["events": "\(events.count)", "phases": "\(clock.summary)"])
        return result
    }

    /// Decides the batch and hands it to `write`, optimistically first: a batch of new events
    /// (the normal case) skips the event_id look-up and the look-up of applications it submits
    /// itself. If any of them exists after all, a unique index says so, the savepoint undoes
    /// the attempt, and the careful path decides again with every look-up.
    private func decideAndWrite(_ events: [LedgerEvent], now: Timestamp, on conn: Connection,
                                write: (Decided) throws -> Void) throws -> Decided {
        do {
            return try conn.withTransaction { _ in
                let decided = try decide(events, optimistic: true, now: now, on: conn)
                try write(decided)
                return decided
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            logger.debug("batch meets events or applications the centre has: careful merge",
                         metadata: ["constraint": "\(error.constraint ?? "?")"])
            let decided = try decide(events, optimistic: false, now: now, on: conn)
            try write(decided)
            return decided
        }
    }

    private func raiseHighWaterMark(agency: String?, pushedSeq: Int64?, on conn: Connection) throws {
        guard let agency, let pushedSeq else { return }
        // The same statement a reconcile and a staging use (migration 6), in this transaction.
        try AgencyFunctions(connection: conn, agency: agency).raisePushedSeq(to: pushedSeq)
    }

    /// Thrown inside the one-connection merge when the projection is behind the ledger.
    private struct ProjectionBehind: Error {}

    /// What one merge attempt decided, ready to be written.
    struct Decided: Sendable {
        var result = MergeResult()
        var effects = MergeEffects()
        /// Changed applications in their new state.
        var changed: [ApplicationState] = []
        /// Applications the projection already had when the batch was loaded.
        var loaded: Set<UUID> = []
        var conflictIDs: [Int64] = []
        var store = LifecycleStore()
        /// The highest ledger id the batch writes (nil: it writes no ledger row).
        var lastLedgerID: Int64?
    }

    /// Looks up what the batch needs, numbers its events and runs the fold. Writes nothing but
    /// sequence reservations.
    private func decide(_ events: [LedgerEvent], optimistic: Bool, now: Timestamp, on conn: Connection) throws -> Decided {
        var clock = PhaseClock()
        var decided = Decided()
        let fresh = optimistic ? dedupeWithinBatch(events, result: &decided.result)
                               : try partitionKnown(events, result: &decided.result, on: conn)
        clock.lap("known")

        // Ledger ids: one per new event, plus room for the conflict_opened events a
        // submission can cause.
        let room = fresh.events.count + fresh.events.filter { $0.type == .submitted }.count
        var nextID = try reserve(sequence: "cardsync.ledger_id_seq", count: room, on: conn)
        var numbered: [LedgerEvent] = []
        numbered.reserveCapacity(fresh.events.count)
        for var event in fresh.events {
            event.ledgerID = nextID
            nextID += 1
            numbered.append(event)
        }

        let touched = Set(numbered.map(\.applicationID))
        let submittedHere = optimistic ? Set(numbered.lazy.filter { $0.type == .submitted }.map(\.applicationID)) : []
        let children = Set(numbered.compactMap(\.submittedChildID))
        // The optimistic attempt runs before the projection's transaction opens, so that
        // connection is free to share the look-ups; the careful one may follow a failed write.
        let store = try BatchStateLoader.load(applications: Array(touched.subtracting(submittedHere)),
                                         submittedHere: Array(submittedHere), children: Array(children),
                                         helper: optimistic ? projection : nil, on: conn)
        decided.loaded = Set(store.applications.keys)
        clock.lap("load")

        let plan = MergePlanner.plan(numbered, reuseConflicts: fresh.reuseConflicts, store: store, now: now,
                                     firstSystemLedgerID: nextID)
        decided.effects = plan.effects
        decided.store = plan.store
        decided.changed = plan.changed
        decided.lastLedgerID = plan.lastLedgerID
        clock.lap("fold")

        try checkAgenciesRegistered(events: decided.effects.newEvents, applications: decided.changed, on: conn)
        decided.conflictIDs = try reserveConflictIDs(decided.effects, on: conn)

        let inputIDs = Set(numbered.map(\.ledgerID))
        for (event, outcome) in decided.effects.newEvents where inputIDs.contains(event.ledgerID) {
            decided.result.accepted += 1
            if outcome == .pending { decided.result.pending += 1 }
            if outcome == .notApplied { decided.result.notApplied += 1 }
        }
        decided.result.ledgerIDs = numbered.map(\.ledgerID)
        decided.result.conflictsOpened = decided.effects.conflicts.count
        logger.debug("decided batch", metadata: ["events": "\(events.count)", "optimistic": "\(optimistic)",
                                                 "phases": "\(clock.summary)"])
        return decided
    }

    /// Ledger rows, outcome changes, conflicts and deliveries.
    private func writeLedgerSide(_ decided: Decided, on conn: Connection) throws {
        var clock = PhaseClock()
        let effects = decided.effects
        let store = decided.store
        try LedgerWriter.write(effects.newEvents, conflictIDs: decided.conflictIDs, references: effects.conflictReferences,
                               applicationExists: { store[$0] != nil }, on: conn)
        try LedgerWriter.updateOutcomes(effects.outcomeChanges, on: conn)
        clock.lap("ledger")
        try ConflictWriter.insert(effects.conflicts, ids: decided.conflictIDs, namingSubmissions: effects.conflictsNamingSubmissions, on: conn)
        try ConflictWriter.resolveExpired(releasedLedgerIDs: effects.releasedPending, on: conn)
        try ConflictWriter.closeExpired(refusedLedgerIDs: effects.refusedPending, on: conn)
        try writeDeliveries(effects.deliveries, on: conn)
        clock.lap("conflicts+deliveries")
        logger.debug("wrote ledger side", metadata: ["phases": "\(clock.summary)"])
    }

    /// Projection rows and the watermark that says the projection holds this batch.
    private static func writeProjectionSide(_ decided: Decided, on conn: Connection) throws {
        try ProjectionWriter.write(decided.changed, existing: decided.loaded, on: conn)
        if let last = decided.lastLedgerID { try ProjectionWatermark.advance(to: last, on: conn) }
    }

    /// Writes the projection on its own connection, on another thread, while this thread writes
    /// the ledger. Both must succeed; the caller's transactions decide what is kept.
    private func writeBothSidesAtOnce(_ decided: Decided, ledger: Connection, projection: Connection) throws {
        let started = ContinuousClock.now
        let background = BackgroundWork { try Self.writeProjectionSide(decided, on: projection) }
        let ledgerOutcome = Result { try writeLedgerSide(decided, on: ledger) }
        let projectionOutcome = background.wait()
        logger.debug("wrote both sides", metadata: ["ms": "\(Int((ContinuousClock.now - started).seconds * 1000))"])
        // A unique violation on either side sends the batch down the careful path.
        try ledgerOutcome.get()
        try projectionOutcome.get()
    }

    // MARK: Known events

    private struct Fresh {
        var events: [LedgerEvent] = []
        var reuseConflicts: [ConflictDraft] = []
    }

    /// Splits off repeats of an event_id within the batch (the optimistic path: the ledger's
    /// unique index catches repeats of events already stored).
    private func dedupeWithinBatch(_ events: [LedgerEvent], result: inout MergeResult) -> Fresh {
        partition(events, known: [:], result: &result)
    }

    /// Splits off events whose event_id is already in the ledger (or earlier in this batch).
    private func partitionKnown(_ events: [LedgerEvent], result: inout MergeResult, on conn: Connection) throws -> Fresh {
        var known: [UUID: LedgerEvent] = [:]
        let ids = events.map(\.eventID)
        if !ids.isEmpty {
            let rows = try conn.query("SELECT \(unescaped: CentralRowMapper.ledgerColumns) FROM cardsync.ledger WHERE event_id = ANY($1::uuid[])",
                                      [.uuidArray(ids)])
            for row in rows {
                let event = try CentralRowMapper.decodeLedgerEvent(row)
                known[event.eventID] = event
            }
        }
        // Only ids offered with content other than the ledger's can have been reported before.
        let differing = Set(events.lazy.filter { e in known[e.eventID].map { !Self.sameContent($0, e) } ?? false }.map(\.eventID))
        return partition(events, known: known, reported: try reportedReuses(of: Array(differing), on: conn),
                         archived: try archivedEvents(among: ids.filter { known[$0] == nil }, on: conn),
                         result: &result)
    }

    /// Which of `ids` belong to a month of the ledger that was detached for archiving
    /// (`archived_events`, migration 7): offered again, they are already present. Their content
    /// left with the month, so it is not compared.
    private func archivedEvents(among ids: [UUID], on conn: Connection) throws -> Set<UUID> {
        guard !ids.isEmpty else { return [] }
        let rows = try conn.query("SELECT event_id FROM cardsync.archived_events WHERE event_id = ANY($1::uuid[])",
                                  [.uuidArray(ids)])
        return Set(try rows.map { try $0.decode(UUID.self, column: "event_id") })
    }

    /// The events already reported in an `event_id_reuse` conflict, by event_id: offered again
    /// (a re-sync after a crash or a lost checkpoint), they are the same event arriving again.
    private func reportedReuses(of ids: [UUID], on conn: Connection) throws -> [UUID: [LedgerEvent]] {
        guard !ids.isEmpty else { return [:] }
        var reported: [UUID: [LedgerEvent]] = [:]
        let rows = try conn.query("""
            SELECT (detail->'incoming')::text AS incoming FROM cardsync.conflicts
            WHERE kind = 'event_id_reuse' AND event_ids && $1::uuid[]
            """, [.uuidArray(ids)])
        for row in rows {
            guard let text = try row.decode(String?.self, column: "incoming") else { continue }
            let o = try JSONParser.parse(text)
            guard let eventID = o["event_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
                  let applicationID = o["application_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
                  let type = o["type"]?.stringValue.flatMap(EventType.init(rawValue:)),
                  let occurredAt = o["occurred_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
            else { continue }
            reported[eventID, default: []].append(LedgerEvent(
                ledgerID: 0, eventID: eventID, applicationID: applicationID, type: type,
                agencyCode: o["agency_code"]?.stringValue, seq: o["seq"]?.intValue, occurredAt: occurredAt,
                data: o["data"] ?? .null))
        }
        return reported
    }

    /// An event whose event_id is known (stored, or earlier in the batch) with the same content
    /// is "already present"; with different content it is an `event_id_reuse` conflict.
    private func partition(_ events: [LedgerEvent], known: [UUID: LedgerEvent], reported: [UUID: [LedgerEvent]] = [:],
                           archived: Set<UUID> = [], result: inout MergeResult) -> Fresh {
        var fresh = Fresh()
        var firstInBatch: [UUID: LedgerEvent] = [:]
        firstInBatch.reserveCapacity(events.count)
        var reported = reported
        for event in events {
            if archived.contains(event.eventID) {
                result.alreadyPresent += 1
                continue
            }
            if let earlier = known[event.eventID] ?? firstInBatch[event.eventID] {
                if Self.sameContent(earlier, event)
                    || reported[event.eventID]?.contains(where: { Self.sameContent($0, event) }) == true {
                    result.alreadyPresent += 1
                } else {
                    result.eventIDReuses += 1
                    fresh.reuseConflicts.append(Self.reuseConflict(existing: earlier, incoming: event))
                    reported[event.eventID, default: []].append(event)
                }
                continue
            }
            firstInBatch[event.eventID] = event
            fresh.events.append(event)
        }
        return fresh
    }

    static func sameContent(_ a: LedgerEvent, _ b: LedgerEvent) -> Bool {
        a.applicationID == b.applicationID && a.type == b.type && a.occurredAt == b.occurredAt
            && a.agencyCode == b.agencyCode && a.data == b.data
    }

    static func reuseConflict(existing: LedgerEvent, incoming: LedgerEvent) -> ConflictDraft {
        var incomingJSON: [String: JSONValue] = [
            "event_id": .string(incoming.eventID.lowercased),
            "application_id": .string(incoming.applicationID.lowercased),
            "type": .string(incoming.type.rawValue),
            "occurred_at": .string(incoming.occurredAt.rfc3339),
            "data": incoming.data,
        ]
        if let agency = incoming.agencyCode { incomingJSON["agency_code"] = .string(agency) }
        if let seq = incoming.seq { incomingJSON["seq"] = .int(seq) }
        let agencies = [incoming.agencyCode, existing.agencyCode].compactMap { $0 }
        return ConflictDraft(
            kind: .eventIdReuse, isOpen: true,
            applicationIDs: Array(Set([existing.applicationID, incoming.applicationID])).sorted { $0.lowercased < $1.lowercased },
            agencyCodes: agencies, eventIDs: [incoming.eventID],
            ledgerIDs: existing.ledgerID > 0 ? [existing.ledgerID] : [],
            detail: [
                "existing_ledger_id": .int(existing.ledgerID),
                "existing_type": .string(existing.type.rawValue),
                "incoming": .object(incomingJSON),
                "applied": false,
                "reason": "this event_id is already in the ledger with different content; the second event was not applied",
            ])
    }

    // MARK: Ids and small writes

    /// Refuses a batch that would write an agency code nobody registered. The merge is the only
    /// writer of the ledger and the projection, so this one query per batch stands in for
    /// foreign keys, whose per-row look-ups cost a third of a bulk sync's database time.
    private func checkAgenciesRegistered(events: [(event: LedgerEvent, outcome: EventOutcome)],
                                         applications: [ApplicationState], on conn: Connection) throws {
        var codes = Set(events.compactMap(\.event.agencyCode))
        for app in applications {
            codes.insert(app.owningAgency)
            if let code = app.dispatchedTo { codes.insert(code) }
            if let code = app.issuedBy { codes.insert(code) }
        }
        guard !codes.isEmpty else { return }
        let unknown = try conn.query("""
            SELECT c.code FROM unnest($1::text[]) AS c(code)
            WHERE NOT EXISTS (SELECT 1 FROM cardsync.agencies a WHERE a.code = c.code)
            ORDER BY 1
            """, [.textArray(codes.sorted())])
        if let first = unknown.first {
            let code = try first.decode(String.self, column: "code")
            throw SyncError("agency \(code) is not registered at the centre; register it first (cardsync agency add \(code) --name NAME)")
        }
    }

    /// Reserves `count` consecutive values of a sequence (safe: only ever called under the merge
    /// lock) and returns the first.
    private func reserve(sequence: String, count: Int, on conn: Connection) throws -> Int64 {
        guard count > 0 else { return 0 }
        let row = try conn.query("SELECT setval($1::regclass, nextval($1::regclass) + $2 - 1) AS last",
                                 [.text(sequence), .int64(Int64(count))])
        return try row.first!.decode(Int64.self, column: "last") - Int64(count) + 1
    }

    private func reserveConflictIDs(_ effects: MergeEffects, on conn: Connection) throws -> [Int64] {
        let first = try reserve(sequence: "cardsync.conflict_id_seq", count: effects.conflicts.count, on: conn)
        return effects.conflicts.indices.map { first + Int64($0) }
    }

    private func writeDeliveries(_ deliveries: [(agencyCode: String, ledgerID: Int64)], on conn: Connection) throws {
        guard !deliveries.isEmpty else { return }
        let first = try reserve(sequence: "cardsync.delivery_id_seq", count: deliveries.count, on: conn)
        try conn.execute("""
            INSERT INTO cardsync.deliveries (delivery_id, agency_code, ledger_id)
            SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[])
            ON CONFLICT (agency_code, ledger_id) DO NOTHING
            """, [.int64Array(deliveries.indices.map { first + Int64($0) }),
                  .textArray(deliveries.map(\.agencyCode)), .int64Array(deliveries.map(\.ledgerID))])
    }
}

extension Timestamp {
    /// The current instant.
    public static var now: Timestamp { Timestamp(secondsSince1970: Date().timeIntervalSince1970) }
}

/// Wall-clock time per phase of a merge or a sync, for debug logs (where does the time go).
/// A phase lapped more than once accumulates.
struct PhaseClock {
    private var last = ContinuousClock.now
    private(set) var phases: [(String, Duration)] = []

    mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        if let index = phases.firstIndex(where: { $0.0 == name }) {
            phases[index].1 += now - last
        } else {
            phases.append((name, now - last))
        }
        last = now
    }

    var summary: String {
        phases.map { "\($0.0)=\(Int($0.1.seconds * 1000))ms" }
            .joined(separator: " ")
    }
}
