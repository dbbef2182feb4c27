import CardCore
import CardDatabase
import Foundation
import Logging
import PostgresClient

/// Records the bureau's decisions centrally, one at a time or imported from the JSON lines its
/// review and card production systems export, through the same merge and lifecycle rules as
/// agency events.
public struct BureauRecorder {
    let connection: Connection
    let logger: Logger

    public init(connection: Connection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// What became of one recorded decision.
    public struct Recorded: Sendable {
        public var applicationID: UUID
        public var eventID: UUID
        public var type: EventType
        /// applied, pending, not_applied; or `already_present` / `event_id_reuse`.
        public var outcome: String
        /// False when the centre had no such application when the decision was recorded: it
        /// then waits (pending) for the agency's `submitted` to arrive.
        public var applicationKnown = true
    }

    /// What `record` does with application ids the central database does not know.
    public enum UnknownApplications: Sendable {
        /// Records nothing and throws `UnknownApplicationsError`: an id typed by hand that the
        /// centre has never seen is far more often a mistake than an early decision.
        case refuse
        /// Records them as pending until their `submitted` arrives (the lifecycle's rule for an
        /// unknown application), for the rare decision taken before the agency synced.
        case hold
    }

    /// Decisions refused because the centre knows none of these applications; nothing was recorded.
    public struct UnknownApplicationsError: Error, CustomStringConvertible, Sendable {
        /// The unknown ids, in the order they were given.
        public var applicationIDs: [UUID]
        public var description: String {
            let noun = applicationIDs.count == 1 ? "application is" : "applications are"
            return "\(applicationIDs.count) \(noun) not known to the central database: "
                + applicationIDs.map(\.lowercased).joined(separator: ", ") + "; nothing was recorded"
        }
    }

    /// Records one decision per application. `occurredAt` defaults to now. With `.refuse`, one
    /// unknown application id refuses the whole call before anything is written.
    public func record(_ type: EventType, applications: [UUID], data: (UUID) -> JSONValue,
                       occurredAt: Timestamp? = nil, unknownApplications policy: UnknownApplications = .refuse) throws -> [Recorded] {
        guard type.origin == .bureau else { throw SyncError("\(type.rawValue) is not a bureau decision") }
        // Checked outside the merge lock: the centre never forgets an application, so one known
        // now is still known when the merge applies the decision.
        // The projection answers which applications are known: bring it up to the ledger first.
        try ProjectionWatermark.repairIfBehind(on: connection, logger: logger)
        let unknown = try unknownApplications(among: applications)
        if policy == .refuse && !unknown.isEmpty { throw UnknownApplicationsError(applicationIDs: unknown) }
        let unknownSet = Set(unknown)
        let when = occurredAt ?? Timestamp(microseconds: Timestamp.now.microseconds, offsetSeconds: 8 * 3600)
        let events = applications.map { id in
            LedgerEvent(ledgerID: 0, eventID: UUID(), applicationID: id, type: type, agencyCode: nil, seq: nil,
                        occurredAt: when, data: data(id))
        }
        try checkDispatchTargets(events)
        let result = try CentralMerge(connection: connection, logger: logger).merge(events)
        let outcomes = try self.outcomes(of: result.ledgerIDs)
        return zip(events, result.ledgerIDs).map { event, id in
            Recorded(applicationID: event.applicationID, eventID: event.eventID, type: type, outcome: outcomes[id] ?? "applied",
                     applicationKnown: !unknownSet.contains(event.applicationID))
        }
    }

    /// The ids among `ids` that `cardsync.applications` does not hold, each once, in the order given.
    public func unknownApplications(among ids: [UUID]) throws -> [UUID] {
        guard !ids.isEmpty else { return [] }
        var known = Set<UUID>()
        for row in try connection.query("SELECT application_id FROM cardsync.applications WHERE application_id = ANY($1::uuid[])",
                                        [.uuidArray(Array(Set(ids)))]) {
            known.insert(try row.decode(UUID.self, column: "application_id"))
        }
        var seen = Set<UUID>()
        return ids.filter { !known.contains($0) && seen.insert($0).inserted }
    }

    /// The result of `bureau import`.
    public struct ImportReport: Sendable {
        public var lines = 0
        public var merged = MergeResult()
        /// Lines refused, with their 1-based line number, error code and explanation.
        public var refused: [(line: Int, code: String, detail: String)] = []
        /// Of `merged.pending`, the decisions held because the centre does not know their
        /// application yet (its agency may not have synced): worth a look if it stays high.
        public var pendingForUnknownApplications = 0
    }

    /// Imports a JSON-lines file of bureau decisions (outbox line shape without `seq`).
    /// Invalid lines are refused and listed; the valid ones are recorded. Importing the same
    /// file again changes nothing (events are recognised by event_id).
    ///
    /// `progress` is called after each batch with the bytes of the file read so far and its
    /// size, for a progress bar (a batch is one central transaction, so it moves batch by batch).
    public func importFile(_ url: URL, batchSize: Int = 20_000, now: Timestamp = .now,
                           pendingHorizonSeconds: Int64 = SyncOptions().pendingHorizonSeconds,
                           progress: ((_ bytesDone: Int64, _ bytesTotal: Int64) -> Void)? = nil) throws -> ImportReport {
        var report = ImportReport()
        let reader = try OutboxReader(url: url)
        defer { reader.close() }
        let totalBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? 0
        let validator = EventLineValidator(mode: .bureauImport, now: now)
        let agencies = Set(try AgencyRegistry(connection: connection).list().map(\.code))
        let merge = CentralMerge(connection: connection, logger: logger)
        var finished = false
        while !finished {
            var lines = try reader.nextBatch(maxLines: batchSize)
            if lines.isEmpty {
                // An exported file is complete: a last line without a newline is a line too.
                guard let tail = try Self.unterminatedTail(of: url, from: reader.offset) else { break }
                lines = [OutboxLine(bytes: tail, lineNumber: reader.lineNumber + 1, endOffset: reader.offset + Int64(tail.count))]
                finished = true
            }
            var events: [LedgerEvent] = []
            for line in lines {
                report.lines += 1
                switch validator.validate(line.bytes, lineNumber: line.lineNumber, lastSeq: nil) {
                case .success(let e):
                    if e.type == .cardDispatched, let target = e.data["agency_code"]?.stringValue, !agencies.contains(target) {
                        report.refused.append((line.lineNumber, "unknown_agency", "card_dispatched to agency \(target), which is not registered"))
                        continue
                    }
                    events.append(LedgerEvent(ledgerID: 0, eventID: e.eventID, applicationID: e.applicationID, type: e.type,
                                              agencyCode: nil, seq: nil, occurredAt: e.occurredAt, data: e.data))
                case .failure(let reason):
                    report.refused.append((line.lineNumber, reason.code.rawValue, reason.detail))
                }
            }
            if !events.isEmpty {
                let merged = try merge.merge(events, now: now)
                report.merged = report.merged + merged
                report.pendingForUnknownApplications += try pendingForUnknownApplications(ledgerIDs: merged.ledgerIDs)
            }
            progress?(finished ? totalBytes : reader.offset, totalBytes)
        }
        try PendingExpiry.sweep(horizonSeconds: pendingHorizonSeconds, on: connection)
        return report
    }

    /// The bytes after `offset` when the file does not end with a newline.
    static func unterminatedTail(of url: URL, from offset: Int64) throws -> [UInt8]? {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let rest = try handle.readToEnd() ?? Data()
        return rest.isEmpty ? nil : [UInt8](rest)
    }

    private func checkDispatchTargets(_ events: [LedgerEvent]) throws {
        let registry = AgencyRegistry(connection: connection)
        for event in events where event.type == .cardDispatched {
            let code = event.data["agency_code"]?.stringValue ?? ""
            guard try registry.exists(code) else {
                throw SyncError("cannot dispatch to agency '\(code)': it is not registered (cardsync agency list shows the registered ones)")
            }
        }
    }

    /// How many of these newly written ledger rows wait for an application the centre does not
    /// hold. Asked after the merge, so an application submitted meanwhile no longer counts.
    private func pendingForUnknownApplications(ledgerIDs: [Int64]) throws -> Int {
        guard !ledgerIDs.isEmpty else { return 0 }
        let rows = try connection.query("""
            SELECT count(*) FROM cardsync.ledger l
            WHERE l.ledger_id = ANY($1::int8[]) AND l.outcome = 'pending'
              AND NOT EXISTS (SELECT 1 FROM cardsync.applications a WHERE a.application_id = l.application_id)
            """, [.int64Array(ledgerIDs)])
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    private func outcomes(of ledgerIDs: [Int64]) throws -> [Int64: String] {
        var map: [Int64: String] = [:]
        for row in try connection.query("SELECT ledger_id, outcome FROM cardsync.ledger WHERE ledger_id = ANY($1::int8[])",
                                        [.int64Array(ledgerIDs)]) {
            map[try row.decode(Int64.self, column: "ledger_id")] = try row.decode(String.self, column: "outcome")
        }
        return map
    }
}
