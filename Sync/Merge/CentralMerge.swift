import CardCore
import Foundation
import Logging
import PostgresClient

/// Applies a batch of events to the central database in one transaction: idempotently by
/// event_id, through the lifecycle fold, with conflicts, inbox deliveries and (for an agency
/// push) the agency's high-water mark, all committed together or not at all.
///
/// Under the merge lock it makes a constant number of round trips per batch, whatever its size:
/// one look-up of known event ids, one load of the touched applications and their pending
/// events, binary COPY of the new ledger rows and applications, and set-based updates.
public struct CentralMerge {
    let connection: Connection
    let logger: Logger

    public init(connection: Connection, logger: Logger = Logger(label: "cardsync.merge")) {
        self.connection = connection
        self.logger = logger
    }

    /// Merges `events` (their `ledgerID` is ignored and assigned here). With `agency` and
    /// `pushedSeq`, the agency's central high-water mark moves in the same transaction.
    public func merge(_ events: [LedgerEvent], agency: String? = nil, pushedSeq: Int64? = nil,
                      now: Timestamp = .now) throws -> MergeResult {
        try connection.withTransaction { conn in
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
            // Optimistic first: a batch of new events (the normal case) skips the event_id
            // look-up and the look-up of applications it submits itself. If any of them exists
            // after all, a unique index says so, the savepoint undoes the attempt, and the
            // careful path runs.
            let result: MergeResult
            do {
                result = try conn.withTransaction { _ in try attempt(events, optimistic: true, now: now, on: conn) }
            } catch let error as PostgresError where error.isUniqueViolation {
                logger.debug("batch meets events or applications the centre has: careful merge",
                             metadata: ["constraint": "\(error.constraint ?? "?")"])
                result = try attempt(events, optimistic: false, now: now, on: conn)
            }
            if let agency, let pushedSeq {
                try conn.execute("""
                    INSERT INTO cardsync.agency_sync_state (agency_code, pushed_seq, last_push_at) VALUES ($1, $2, now())
                    ON CONFLICT (agency_code) DO UPDATE
                    SET pushed_seq = GREATEST(agency_sync_state.pushed_seq, EXCLUDED.pushed_seq), last_push_at = now()
                    """, [.text(agency), .int64(pushedSeq)])
            }
            return result
        }
    }

    /// One merge attempt inside the caller's transaction and lock.
    private func attempt(_ events: [LedgerEvent], optimistic: Bool, now: Timestamp, on conn: Connection) throws -> MergeResult {
        var clock = PhaseClock()
        var result = MergeResult()
        let fresh = optimistic ? dedupeWithinBatch(events, result: &result)
                               : try partitionKnown(events, result: &result, on: conn)
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
        let children = Set(numbered.compactMap {
            $0.type == .submitted ? $0.data.value(atPath: "child.id_number")?.stringValue : nil
        })
        let store = try StateLoader.load(applications: Array(touched.subtracting(submittedHere)),
                                         pendingOf: Array(touched), children: Array(children), on: conn)
        let loaded = Set(store.applications.keys)
        clock.lap("load")

        var counter = nextID
        var engine = LifecycleEngine(store: store, now: now) {
            defer { counter += 1 }
            return counter
        }
        for event in numbered { engine.ingest(event) }
        var effects = engine.effects
        // Reuse conflicts go after the fold's own, whose indexes system events refer to.
        effects.conflicts += fresh.reuseConflicts
        clock.lap("fold")

        let conflictIDs = try reserveConflictIDs(effects, on: conn)
        try LedgerWriter.write(effects.newEvents, conflictIDs: conflictIDs, references: effects.conflictReferences, on: conn)
        try LedgerWriter.updateOutcomes(effects.outcomeChanges, on: conn)
        clock.lap("ledger")
        let changed = effects.changedApplications.compactMap { engine.store[$0] }
        try ProjectionWriter.write(changed, existing: loaded, on: conn)
        clock.lap("projection")
        try ConflictWriter.insert(effects.conflicts, ids: conflictIDs, namingSubmissions: effects.conflictsNamingSubmissions, on: conn)
        try ConflictWriter.resolveExpired(releasedLedgerIDs: effects.releasedPending, on: conn)
        try ConflictWriter.closeExpired(refusedLedgerIDs: effects.refusedPending, on: conn)
        try writeDeliveries(effects.deliveries, on: conn)
        clock.lap("conflicts+deliveries")

        let inputIDs = Set(numbered.map(\.ledgerID))
        for (event, outcome) in effects.newEvents where inputIDs.contains(event.ledgerID) {
            result.accepted += 1
            if outcome == .pending { result.pending += 1 }
            if outcome == .notApplied { result.notApplied += 1 }
        }
        result.ledgerIDs = numbered.map(\.ledgerID)
        result.conflictsOpened = effects.conflicts.count
        logger.debug("merged batch", metadata: ["events": "\(events.count)", "optimistic": "\(optimistic)",
                                                "phases": "\(clock.summary)"])
        return result
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
            let rows = try conn.query("SELECT \(StateLoader.ledgerColumns) FROM cardsync.ledger WHERE event_id = ANY($1::uuid[])",
                                      [.uuidArray(ids)])
            for row in rows {
                let event = try StateLoader.decodeLedgerEvent(row)
                known[event.eventID] = event
            }
        }
        // Only ids offered with content other than the ledger's can have been reported before.
        let differing = Set(events.lazy.filter { e in known[e.eventID].map { !Self.sameContent($0, e) } ?? false }.map(\.eventID))
        return partition(events, known: known, reported: try reportedReuses(of: Array(differing), on: conn),
                         result: &result)
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
                           result: inout MergeResult) -> Fresh {
        var fresh = Fresh()
        var firstInBatch: [UUID: LedgerEvent] = [:]
        firstInBatch.reserveCapacity(events.count)
        var reported = reported
        for event in events {
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

/// Wall-clock time per phase of a merge, for debug logs (where does a batch's time go).
struct PhaseClock {
    private var last = ContinuousClock.now
    private(set) var phases: [(String, Duration)] = []

    mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        phases.append((name, now - last))
        last = now
    }

    var summary: String {
        phases.map { "\($0.0)=\(Int($0.1.seconds * 1000))ms" }
            .joined(separator: " ")
    }
}
