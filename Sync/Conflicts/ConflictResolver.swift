import CardCore
import Foundation
import Logging
import PostgresClient

/// A person's decision on a conflict (`cardsync conflicts resolve ID ...`).
public enum ConflictDecision: Sendable, Equatable {
    /// `duplicate_application`: keep this application, withdraw the others.
    case keep(UUID)
    /// `concurrent_amendment`: the automatic merge stands.
    case accept
    /// `concurrent_amendment`: apply the losing values.
    case applyOther
    /// `invalid_transition`, `pending_expired`, `event_id_reuse`: the event stays unapplied.
    case dismiss

    public var outcome: ConflictOutcome {
        switch self {
        case .keep: return .keep
        case .accept: return .accept
        case .applyOther: return .applyOther
        case .dismiss: return .dismiss
        }
    }

    /// The conflict kinds this decision resolves.
    public var kinds: [ConflictKind] {
        switch self {
        case .keep: return [.duplicateApplication]
        case .accept, .applyOther: return [.concurrentAmendment]
        case .dismiss: return [.invalidTransition, .pendingExpired, .eventIdReuse]
        }
    }

    /// The command-line spelling, for messages.
    public var flag: String {
        switch self {
        case .keep(let id): return "--keep \(id.lowercased)"
        case .accept: return "--accept"
        case .applyOther: return "--apply-other"
        case .dismiss: return "--dismiss"
        }
    }

    /// The decisions that fit a kind, spelled as flags.
    public static func flags(for kind: ConflictKind) -> String {
        switch kind {
        case .duplicateApplication: return "--keep APP"
        case .concurrentAmendment: return "--accept or --apply-other"
        case .invalidTransition, .pendingExpired, .eventIdReuse: return "--dismiss"
        }
    }
}

/// What a resolution did.
public struct ConflictResolution: Sendable, Equatable {
    /// What happened to one application.
    public struct Change: Sendable, Equatable {
        public var applicationID: UUID
        /// `keep`, `withdraw`, `apply_changes` or `none` (the `conflict_resolved` event's action).
        public var action: String
        /// False when the centre never received the application (the agencies are told anyway).
        public var known: Bool
        public var owningAgency: String?
        public var statusBefore: ApplicationStatus?
        public var statusAfter: ApplicationStatus?
    }

    public var conflictID: Int64
    public var kind: ConflictKind
    public var outcome: ConflictOutcome
    public var resolvedBy: String
    public var resolvedAt: Timestamp
    public var note: String?
    public var changes: [Change]
    /// The `conflict_resolved` ledger events, one per application, in apply order.
    public var ledgerIDs: [Int64]

    public var json: OrderedJSON {
        .object([
            ("conflict_id", .value(.int(conflictID))),
            ("kind", .value(.string(kind.rawValue))),
            ("outcome", .value(.string(outcome.rawValue))),
            ("resolved_by", .value(.string(resolvedBy))),
            ("resolved_at", .value(.string(resolvedAt.rfc3339))),
            ("note", .value(note.map(JSONValue.string) ?? .null)),
            ("applications", .array(changes.map { c in
                .object([
                    ("application_id", .value(.string(c.applicationID.lowercased))),
                    ("owning_agency", .value(c.owningAgency.map(JSONValue.string) ?? .null)),
                    ("action", .value(.string(c.action))),
                    ("status_before", .value(c.statusBefore.map { .string($0.rawValue) } ?? .null)),
                    ("status_after", .value(c.statusAfter.map { .string($0.rawValue) } ?? .null)),
                ])
            })),
            ("ledger_ids", .value(.array(ledgerIDs.map { .int($0) }))),
        ])
    }
}

/// Applies a person's decision on a conflict (../shared/spec/lifecycle.md, "Conflicts").
///
/// In one transaction under the merge lock: lock the conflict row, check that it is still open
/// (or an automatic field merge awaiting review) and that the decision fits its kind, record one
/// `conflict_resolved` event per application through `CentralMerge` (so the projection stays a
/// fold of the ledger and each owning agency gets an inbox line), then close the conflict.
/// Either all of it happens or none of it.
public struct ConflictResolver {
    let connection: Connection
    let logger: Logger

    public init(connection: Connection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    static let lockSQL: PostgresQuery = "SELECT \(unescaped: ConflictRecord.columns) FROM cardsync.conflicts WHERE conflict_id = $1 FOR UPDATE"

    static let applicationsSQL: PostgresQuery = """
        SELECT \(unescaped: CentralRowMapper.applicationColumns) FROM cardsync.applications WHERE application_id = ANY($1::uuid[])
        """

    /// Active applications (not on hold, not terminal) of a child outside a set.
    static let otherActiveSQL: PostgresQuery = """
        SELECT application_id, owning_agency, status FROM cardsync.applications
        WHERE child_id_number = $1 AND status = ANY($3::text[])
          AND NOT (application_id = ANY($2::uuid[]))
        ORDER BY application_id
        """

    /// Applications of a child whose card was issued, outside a set.
    static let issuedSQL: PostgresQuery = """
        SELECT application_id, issued_by FROM cardsync.applications
        WHERE child_id_number = $1 AND status = 'issued' AND NOT (application_id = ANY($2::uuid[]))
        ORDER BY submitted_at, application_id
        """

    static let closeSQL: PostgresQuery = """
        UPDATE cardsync.conflicts SET
            status = 'resolved', outcome = $2, resolved_by = $3, resolved_at = now(), note = $4,
            detail = CASE WHEN $5::bool
                          THEN detail || jsonb_build_object('automatic', jsonb_build_object(
                                  'outcome', outcome, 'resolved_by', resolved_by, 'resolved_at', resolved_at))
                          ELSE detail END
                     || CASE WHEN $6::uuid IS NULL THEN '{}'::jsonb
                             ELSE jsonb_build_object('kept_application_id', $6::uuid::text) END
        WHERE conflict_id = $1
        RETURNING (extract(epoch FROM resolved_at) * 1000000)::int8 AS resolved_us
        """

    /// Resolves conflict `id` with `decision`, recorded as made by `by`.
    public func resolve(_ id: Int64, decision: ConflictDecision, by: String, note: String? = nil,
                        now: Timestamp = .now) throws -> ConflictResolution {
        let resolver = by.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !resolver.isEmpty else {
            throw ConflictError(.missingResolver, "a resolution needs the name of who decided it",
                                hint: "pass --by NAME")
        }
        let note = note.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        return try connection.withTransaction { conn in
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int64(MergeLocks.merge)])
            guard let row = try conn.query(Self.lockSQL, [.int64(id)]).first else { throw ConflictError.notFound(id) }
            let conflict = try ConflictRecord.decode(row, masked: false)
            try Self.checkOpen(conflict)
            guard decision.kinds.contains(conflict.kind) else {
                throw ConflictError(
                    .decisionDoesNotFitKind,
                    "\(decision.flag) cannot resolve conflict \(id): it is a \(conflict.kind.rawValue) conflict, resolved with \(ConflictDecision.flags(for: conflict.kind)); nothing changed",
                    hint: "cardsync conflicts show \(id) explains the conflict and its possible decisions")
            }
            var apps: [UUID: ApplicationState] = [:]
            for row in try conn.query(Self.applicationsSQL, [.uuidArray(conflict.applicationIDs)]) {
                let app = try CentralRowMapper.decodeApplication(row)
                apps[app.applicationID] = app
            }
            let planned = try plan(conflict, decision: decision, apps: apps, on: conn)
            let when = Timestamp(microseconds: now.microseconds, offsetSeconds: ConflictReview.displayOffsetSeconds)
            let events = planned.map { step in
                LedgerEvent(ledgerID: 0, eventID: UUID(), applicationID: step.applicationID, type: .conflictResolved,
                            agencyCode: nil, seq: nil, occurredAt: when, data: step.data)
            }
            let merged = try CentralMerge(connection: conn, logger: logger).merge(events, now: now)
            guard merged.accepted == events.count, merged.notApplied == 0, merged.pending == 0 else {
                throw ConflictError(.cannotKeep, "conflict \(id): the resolution could not be applied to every application; nothing changed")
            }
            let closed = try conn.query(Self.closeSQL, [
                .int64(id), .text(decision.outcome.rawValue), .text(resolver), note.map { .text($0) } ?? .null,
                .bool(conflict.awaitsReview), Self.keptID(decision).map { .uuid($0) } ?? .null,
            ])
            let resolvedAt = ConflictReview.displayed(try closed.first!.decode(Int64.self, column: "resolved_us"))
            var after: [UUID: ApplicationStatus] = [:]
            for row in try conn.query(Self.applicationsSQL, [.uuidArray(conflict.applicationIDs)]) {
                let app = try CentralRowMapper.decodeApplication(row)
                after[app.applicationID] = app.status
            }
            logger.info("conflict resolved", metadata: [
                "conflict_id": "\(id)", "kind": "\(conflict.kind.rawValue)", "outcome": "\(decision.outcome.rawValue)",
            ])
            return ConflictResolution(
                conflictID: id, kind: conflict.kind, outcome: decision.outcome, resolvedBy: resolver,
                resolvedAt: resolvedAt, note: note,
                changes: planned.map { step in
                    ConflictResolution.Change(
                        applicationID: step.applicationID, action: step.action, known: apps[step.applicationID] != nil,
                        owningAgency: apps[step.applicationID]?.owningAgency,
                        statusBefore: apps[step.applicationID]?.status, statusAfter: after[step.applicationID])
                },
                ledgerIDs: merged.ledgerIDs)
        }
    }

    /// The application a `--keep` decision keeps, recorded with the resolution.
    static func keptID(_ decision: ConflictDecision) -> UUID? {
        if case .keep(let id) = decision { return id }
        return nil
    }

    /// A conflict may be decided once by a person; an automatic field merge counts as not yet
    /// decided, every other resolution as final.
    static func checkOpen(_ c: ConflictRecord) throws {
        guard c.isSettled else { return }
        let when = ConflictReview.readable(c.resolvedAt)
        let outcome = c.outcome.map { " (\($0.rawValue))" } ?? ""
        throw ConflictError(
            .alreadyResolved,
            "conflict \(c.id) was already resolved on \(when) by \(c.resolvedBy ?? "?")\(outcome): nothing changed",
            hint: "cardsync conflicts show \(c.id) shows the decision")
    }

    // MARK: Planning

    struct Step {
        var applicationID: UUID
        var action: String
        var data: JSONValue
    }

    /// The `conflict_resolved` events the decision needs, in apply order (withdrawals before a
    /// kept application returns, so that the child never has two active applications).
    func plan(_ c: ConflictRecord, decision: ConflictDecision, apps: [UUID: ApplicationState],
              on conn: Connection) throws -> [Step] {
        var seen = Set<UUID>()
        let ids = c.applicationIDs.filter { seen.insert($0).inserted }
        func step(_ id: UUID, _ action: String, _ extra: [String: JSONValue] = [:]) -> Step {
            var data: [String: JSONValue] = [
                "conflict_id": .int(c.id), "kind": .string(c.kind.rawValue),
                "outcome": .string(decision.outcome.rawValue), "action": .string(action),
            ]
            for (k, v) in extra { data[k] = v }
            if apps[id] == nil {
                // The centre never received this application: the engine tells these agencies.
                data["agency_codes"] = .array(c.agencyCodes.map(JSONValue.string))
            }
            return Step(applicationID: id, action: action, data: .object(data))
        }
        switch decision {
        case .keep(let keptID):
            try checkKeep(keptID, in: c, ids: ids, apps: apps, on: conn)
            let kept: [String: JSONValue] = ["kept_application_id": .string(keptID.lowercased)]
            return ids.filter { $0 != keptID }.map { step($0, "withdraw", kept) } + [step(keptID, "keep", kept)]
        case .accept, .dismiss:
            return ids.map { step($0, "none") }
        case .applyOther:
            let changes = c.detail["losing_changes"]?.objectValue ?? [:]
            try checkApplyOther(changes, in: c, ids: ids, apps: apps)
            return ids.map { step($0, "apply_changes", ["changes": .object(changes)]) }
        }
    }

    func checkKeep(_ keptID: UUID, in c: ConflictRecord, ids: [UUID], apps: [UUID: ApplicationState],
                   on conn: Connection) throws {
        guard ids.contains(keptID) else {
            throw ConflictError(
                .applicationNotInConflict,
                "application \(keptID.lowercased) is not one of conflict \(c.id)'s applications (\(ids.map(\.lowercased).joined(separator: ", "))): nothing changed",
                hint: "keep one of the applications the conflict names")
        }
        guard let kept = apps[keptID] else {
            throw ConflictError(.cannotKeep, "application \(keptID.lowercased) is not in the central database: nothing changed")
        }
        let others = ids.filter { $0 != keptID }
        // Keeping an issued card withdraws the other applications: the child keeps its card.
        if kept.status.isTerminal, kept.status != .issued, let open = others.first(where: { apps[$0]?.status.isOpen == true }) {
            throw ConflictError(
                .cannotKeep,
                "application \(keptID.lowercased) is already \(kept.status.rawValue): keeping it would withdraw \(open.lowercased) and leave the child with no open application; nothing changed",
                hint: "keep \(open.lowercased) instead")
        }
        let becomesActive = kept.isActive || (kept.status == .onHold && kept.heldStatus != nil)
        guard becomesActive else { return }
        if let card = try conn.query(Self.issuedSQL, [.text(kept.childIDNumber), .uuidArray([keptID])]).first {
            let cardID = try card.decode(UUID.self, column: "application_id")
            let agency = try card.decode(String?.self, column: "issued_by") ?? "?"
            let inConflict = ids.contains(cardID)
            throw ConflictError(
                .cannotKeep,
                "cannot keep application \(keptID.lowercased): the child already holds an issued card (application \(cardID.lowercased), issued by \(agency)), and keeping a second application would give the child a second card; a replacement card is a different procedure; nothing changed",
                hint: inConflict
                    ? "keep \(cardID.lowercased) (the issued card): the other application is then withdrawn"
                    : "withdraw application \(keptID.lowercased) at its agency, or dismiss it through the bureau's replacement-card procedure")
        }
        let rows = try conn.query(Self.otherActiveSQL, [.text(kept.childIDNumber), .uuidArray(ids),
                                                            .textArray(ApplicationStatus.activeNames)])
        if let rival = rows.first {
            let rivalID = try rival.decode(UUID.self, column: "application_id")
            let agency = try rival.decode(String.self, column: "owning_agency")
            let status = try rival.decode(String.self, column: "status")
            throw ConflictError(
                .cannotKeep,
                "cannot keep application \(keptID.lowercased): application \(rivalID.lowercased) of the same child (\(agency)) is \(status), and a child has one active application; nothing changed",
                hint: "resolve the duplicate conflict that names \(rivalID.lowercased) first (cardsync conflicts list --kind duplicate_application)")
        }
    }

    func checkApplyOther(_ changes: [String: JSONValue], in c: ConflictRecord, ids: [UUID],
                         apps: [UUID: ApplicationState]) throws {
        guard !changes.isEmpty else {
            throw ConflictError(.cannotApplyOther, "conflict \(c.id) holds no losing values to apply: nothing changed",
                                hint: "resolve it with --accept")
        }
        for id in ids {
            guard let app = apps[id] else {
                throw ConflictError(.cannotApplyOther, "application \(id.lowercased) is not in the central database: nothing changed")
            }
            if app.status.isTerminal {
                throw ConflictError(
                    .cannotApplyOther,
                    "application \(id.lowercased) is already \(app.status.rawValue): its form can no longer change; nothing changed",
                    hint: "resolve the conflict with --accept")
            }
            let paths = Set(changes.keys)
            if [.approved, .produced, .dispatched].contains(app.status), !paths.isSubset(of: AmendablePath.changeableAfterApproval) {
                let blocked = paths.subtracting(AmendablePath.changeableAfterApproval).sorted().joined(separator: ", ")
                throw ConflictError(
                    .cannotApplyOther,
                    "application \(id.lowercased) is already \(app.status.rawValue): only guardian.phone may change, not \(blocked); nothing changed",
                    hint: "resolve the conflict with --accept, and have the agency record a correction if one is needed")
            }
        }
    }
}
