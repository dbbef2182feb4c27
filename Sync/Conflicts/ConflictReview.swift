import CardCore
import Foundation
import PostgresClient

/// Reads conflicts for review: `cardsync conflicts list` and `cardsync conflicts show`.
/// Only reads; decisions go through `ConflictResolver`.
public struct ConflictReview {
    let connection: Connection

    public init(connection: Connection) { self.connection = connection }

    /// Times are shown in the bureau's own offset (Asia/Shanghai, UTC+08:00, no daylight saving).
    public static let displayOffsetSeconds: Int32 = 8 * 3600

    static func displayed(_ microseconds: Int64) -> Timestamp {
        Timestamp(microseconds: microseconds, offsetSeconds: displayOffsetSeconds)
    }

    /// `2026-10-03T09:15:27+08:00`: whole seconds in the display offset, for messages.
    public static func readable(_ t: Timestamp?) -> String {
        guard let t else { return "?" }
        return Timestamp(microseconds: t.microseconds - t.microseconds % 1_000_000).format(offsetSeconds: displayOffsetSeconds)
    }

    // MARK: List

    static let listSQL: PostgresQuery = """
        SELECT \(unescaped: ConflictRecord.columns) FROM cardsync.conflicts
        WHERE ($1::text = 'all' OR status = $1::text)
          AND ($2::text IS NULL OR kind = $2::text)
          AND ($3::text IS NULL OR agency_codes @> ARRAY[$3::text])
          AND ($4::timestamptz IS NULL OR detected_at >= $4::timestamptz)
          AND ($5::timestamptz IS NULL OR detected_at < $5::timestamptz)
        ORDER BY conflict_id
        """

    /// Conflicts matching `filter`, oldest first.
    public func list(_ filter: ConflictFilter = ConflictFilter()) throws -> [ConflictRecord] {
        let rows = try connection.query(Self.listSQL, [
            .text(filter.status.rawValue),
            filter.kind.map { .text($0.rawValue) } ?? .null,
            filter.agency.map { .text($0) } ?? .null,
            filter.detectedFrom.map { .timestamp(microsecondsSince1970: $0.microseconds) } ?? .null,
            filter.detectedBefore.map { .timestamp(microsecondsSince1970: $0.microseconds) } ?? .null,
        ])
        return try rows.map { try ConflictRecord.decode($0) }
    }

    // MARK: Show

    static let oneSQL: PostgresQuery = "SELECT \(unescaped: ConflictRecord.columns) FROM cardsync.conflicts WHERE conflict_id = $1"

    static let applicationsSQL: PostgresQuery = """
        SELECT application_id, owning_agency, channel, status, held_status, version, form::text AS form,
               (extract(epoch FROM submitted_at) * 1000000)::int8 AS submitted_us, card_number
        FROM cardsync.applications WHERE application_id = ANY($1::uuid[])
        """

    static let eventsSQL: PostgresQuery = """
        SELECT \(unescaped: CentralRowMapper.ledgerColumns), outcome FROM cardsync.ledger
        WHERE ledger_id = ANY($1::int8[]) OR event_id = ANY($2::uuid[])
        ORDER BY ledger_id
        """

    static let historySQL: PostgresQuery = """
        SELECT \(unescaped: CentralRowMapper.ledgerColumns), outcome FROM cardsync.ledger
        WHERE application_id = ANY($1::uuid[]) AND type IN ('conflict_opened', 'conflict_resolved')
          AND data->>'conflict_id' = $2::int8::text
        ORDER BY ledger_id
        """

    /// One conflict with its applications, events, field values and findings.
    public func show(_ id: Int64) throws -> ConflictDetail {
        guard let row = try connection.query(Self.oneSQL, [.int64(id)]).first else {
            throw ConflictError.notFound(id)
        }
        let conflict = try ConflictRecord.decode(row)
        let applications = try loadApplications(conflict)
        var events = try connection.query(Self.eventsSQL, [.int64Array(conflict.ledgerIDs), .uuidArray(conflict.eventIDs)])
            .map(Self.decodeEvent)
        if conflict.kind == .eventIdReuse, let incoming = conflict.detail["incoming"], let refused = Self.refusedEvent(incoming) {
            events.append(refused)
        }
        let history = try connection.query(Self.historySQL, [.uuidArray(conflict.applicationIDs), .int64(id)])
            .map(Self.decodeEvent)
        var detail = ConflictDetail(conflict: conflict, applications: applications, events: events, fields: [],
                                    findings: [], history: history, decisions: [])
        detail.fields = Self.fields(of: conflict, applications: applications)
        detail.findings = Self.findings(detail)
        detail.decisions = Self.decisions(conflict, applications: applications)
        return detail
    }

    private func loadApplications(_ conflict: ConflictRecord) throws -> [ConflictDetail.Application] {
        var found: [UUID: ConflictDetail.Application] = [:]
        for row in try connection.query(Self.applicationsSQL, [.uuidArray(conflict.applicationIDs)]) {
            let id = try row.decode(UUID.self, column: "application_id")
            found[id] = ConflictDetail.Application(
                applicationID: id, known: true,
                owningAgency: try row.decode(String.self, column: "owning_agency"),
                channel: try row.decode(String.self, column: "channel"),
                status: try CentralRowMapper.decodeStatus(try row.decode(String.self, column: "status"), column: "status"),
                heldStatus: try row.decode(String?.self, column: "held_status").map { try CentralRowMapper.decodeStatus($0, column: "held_status") },
                version: Int(try row.decode(Int32.self, column: "version")),
                submittedAt: Self.displayed(try row.decode(Int64.self, column: "submitted_us")),
                cardNumber: try row.decode(String?.self, column: "card_number"),
                role: nil,
                form: PersonalDataMask.json(try JSONParser.parse(try row.decode(String.self, column: "form"))))
        }
        var seen = Set<UUID>()
        return conflict.applicationIDs.filter { seen.insert($0).inserted }.map { id in
            var app = found[id] ?? ConflictDetail.Application(
                applicationID: id, known: false, owningAgency: nil, channel: nil, status: nil, heldStatus: nil,
                version: nil, submittedAt: nil, cardNumber: nil, role: nil, form: .null)
            if conflict.kind == .duplicateApplication {
                if conflict.detail["kept"]?.stringValue == id.lowercased { app.role = "kept" }
                if conflict.detail["held"]?.stringValue == id.lowercased { app.role = "held" }
            }
            return app
        }
    }

    static func decodeEvent(_ row: Row) throws -> ConflictDetail.Event {
        let event = try CentralRowMapper.decodeLedgerEvent(row)
        return ConflictDetail.Event(
            ledgerID: event.ledgerID, eventID: event.eventID, applicationID: event.applicationID,
            type: event.type.rawValue, agencyCode: event.agencyCode, seq: event.seq,
            occurredAt: event.occurredAt, outcome: try row.decode(String.self, column: "outcome"),
            data: PersonalDataMask.json(event.data))
    }

    /// The second event of an event_id reuse, as the conflict detail keeps it.
    static func refusedEvent(_ incoming: JSONValue) -> ConflictDetail.Event? {
        guard let eventID = incoming["event_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
              let applicationID = incoming["application_id"]?.stringValue.flatMap(UUID.init(uuidString:))
        else { return nil }
        return ConflictDetail.Event(
            ledgerID: nil, eventID: eventID, applicationID: applicationID,
            type: incoming["type"]?.stringValue ?? "?", agencyCode: incoming["agency_code"]?.stringValue,
            seq: incoming["seq"]?.intValue,
            occurredAt: incoming["occurred_at"]?.stringValue.flatMap { Timestamp(rfc3339: $0) },
            outcome: "refused", data: incoming["data"] ?? .null)
    }

    static func fields(of conflict: ConflictRecord, applications: [ConflictDetail.Application]) -> [ConflictDetail.Field] {
        guard conflict.kind == .concurrentAmendment else { return [] }
        let form = applications.first?.form
        return (conflict.detail["fields"]?.arrayValue ?? []).compactMap { entry in
            guard let path = entry["path"]?.stringValue else { return nil }
            return ConflictDetail.Field(
                path: path, appliedValue: entry["applied_value"] ?? .null, losingValue: entry["losing_value"] ?? .null,
                currentValue: form?.value(atPath: path), winner: entry["winner"]?.stringValue ?? "",
                earlierChangeLedgerID: entry["earlier_change_ledger_id"]?.intValue)
        }
    }

    // MARK: Findings

    static func findings(_ d: ConflictDetail) -> [String] {
        let c = d.conflict
        func describe(_ app: ConflictDetail.Application) -> String {
            guard app.known else { return "application \(app.applicationID.lowercased) (not received centrally)" }
            return "application \(app.applicationID.lowercased) of \(app.owningAgency ?? "?")"
        }
        var lines: [String] = []
        switch c.kind {
        case .duplicateApplication:
            let rule = c.detail["rule"]?.stringValue ?? ""
            for app in d.applications {
                let now = app.status?.rawValue ?? "unknown"
                switch app.role {
                case "kept":
                    lines.append("Kept by the duplicate rule (\(rule)): \(describe(app)), now \(now).")
                case "held":
                    let back = c.detail["held_status"]?.stringValue ?? "submitted"
                    lines.append("Put on hold: \(describe(app)), now \(now); kept, it returns to \(back).")
                default:
                    lines.append("\(describe(app)), now \(now).")
                }
            }
            if let by = c.detail["detected_by_event"]?.stringValue {
                lines.append("Detected when event \(by) (a submitted for the same child) arrived.")
            }
            if !c.isSettled, let card = d.applications.first(where: { $0.status == .issued }) {
                lines.append("The child already holds an issued card (\(describe(card))): only that application can be kept; the other is then withdrawn. A replacement card is a different procedure.")
            }
            if let kept = c.keptApplicationID {
                lines.append("Resolved by keeping application \(kept.lowercased); the others were withdrawn.")
            }
        case .concurrentAmendment:
            let base = c.detail["base_version"]?.intValue.map(String.init) ?? "?"
            let arrival = c.detail["version_at_arrival"]?.intValue.map(String.init) ?? "?"
            lines.append("An amendment based on version \(base) arrived when the application was at version \(arrival).")
            for f in d.fields {
                let applied = ConflictDetail.text(f.appliedValue), losing = ConflictDetail.text(f.losingValue)
                if f.winner == "this_event" {
                    lines.append("\(f.path): applied \(applied) from the late-arriving amendment, which occurred later; not applied \(losing).")
                } else {
                    lines.append("\(f.path): kept \(applied), changed after the late-arriving amendment occurred; not applied \(losing) from that amendment.")
                }
            }
        case .invalidTransition:
            let type = c.detail["event_type"]?.stringValue ?? "?"
            let agency = d.events.first?.agencyCode.map { " from \($0)" } ?? ""
            lines.append("\(type)\(agency) was not applied: \(c.detail["reason"]?.stringValue ?? "") (the application was \(c.detail["status"]?.stringValue ?? "?")).")
        case .pendingExpired:
            let type = c.detail["event_type"]?.stringValue ?? "?"
            let waited = ConflictRecord.duration(c.detail["waited_seconds"]?.intValue ?? 0)
            let horizon = ConflictRecord.duration(c.detail["horizon_seconds"]?.intValue ?? 0)
            lines.append("\(type) waited \(waited) for its prerequisite, longer than the pending horizon (\(horizon)).")
            for e in d.events {
                switch e.outcome {
                case "pending":
                    lines.append("It is still pending: it applies automatically if its prerequisite arrives, even after --dismiss.")
                case "applied":
                    lines.append("Its prerequisite arrived since and it applied.")
                default:
                    lines.append("It can no longer apply (\(e.outcome)).")
                }
            }
        case .eventIdReuse:
            let incoming = c.detail["incoming"]
            let ledger = c.detail["existing_ledger_id"]?.intValue.map(String.init) ?? "?"
            let type = incoming?["type"]?.stringValue ?? "?"
            let agency = incoming?["agency_code"]?.stringValue.map { " from \($0)" } ?? ""
            let seq = incoming?["seq"]?.intValue.map { ", seq \($0)" } ?? ""
            lines.append("Ledger event \(ledger) (\(c.detail["existing_type"]?.stringValue ?? "?")) holds this event_id and stays applied as it was.")
            lines.append("A second event with the same event_id (\(type)\(agency)\(seq)) has different content and was not applied.")
        }
        if c.status == .resolved, let outcome = c.outcome {
            let when = readable(c.resolvedAt)
            lines.append("Resolved \(outcome.rawValue) on \(when) by \(c.resolvedBy ?? "?")\(c.note.map { ": \($0)" } ?? "").")
        }
        return lines
    }

    static func decisions(_ c: ConflictRecord, applications: [ConflictDetail.Application]) -> [String] {
        guard !c.isSettled else { return [] }
        switch c.kind {
        case .duplicateApplication:
            // The same rules `ConflictResolver.checkKeep` enforces: a child that holds an issued
            // card keeps it (no second card), and a rejected or withdrawn application cannot be
            // kept while another is open.
            let issued = applications.filter { $0.status == .issued }
            if !issued.isEmpty { return issued.map { "--keep \($0.applicationID.lowercased)" } }
            let anyOpen = applications.contains { $0.status?.isOpen == true }
            return applications.filter { $0.status?.isTerminal != true || !anyOpen }
                .map { "--keep \($0.applicationID.lowercased)" }
        case .concurrentAmendment:
            return ["--accept", "--apply-other"]
        case .invalidTransition, .pendingExpired, .eventIdReuse:
            return ["--dismiss"]
        }
    }
}
