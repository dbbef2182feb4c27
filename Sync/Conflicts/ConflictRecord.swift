import CardCore
import Foundation
import PostgresClient

/// `open` or `resolved` (../shared/spec/lifecycle.md, "Conflicts").
public enum ConflictStatus: String, Sendable, CaseIterable, Codable {
    case open
    case resolved
}

/// One row of `cardsync.conflicts`, with personal data in `detail` masked.
public struct ConflictRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: ConflictKind
    public var status: ConflictStatus
    public var applicationIDs: [UUID]
    public var agencyCodes: [String]
    public var eventIDs: [UUID]
    public var ledgerIDs: [Int64]
    /// What the fold recorded: what was applied and what not, and why (masked).
    public var detail: JSONValue
    public var detectedAt: Timestamp
    public var resolvedAt: Timestamp?
    public var resolvedBy: String?
    public var outcome: ConflictOutcome?
    public var note: String?

    /// Resolved automatically by cardsync and still open to one decision by a person: a
    /// concurrent amendment merged at detection.
    public var awaitsReview: Bool {
        kind == .concurrentAmendment && status == .resolved && outcome == .autoMerged
    }

    /// Resolved, and no further decision may change it.
    public var isSettled: Bool { status == .resolved && !awaitsReview }

    /// The application a person kept when resolving a duplicate (`--keep`), if so resolved.
    public var keptApplicationID: UUID? {
        detail["kept_application_id"]?.stringValue.flatMap(UUID.init(uuidString:))
    }

    /// The outcome as a list shows it: `keep` names the application kept.
    public var outcomeText: String {
        guard let outcome else { return "" }
        if let kept = keptApplicationID { return "\(outcome.rawValue) \(kept.lowercased.prefix(8))" }
        return outcome.rawValue
    }

    /// One line for a list: what happened, in a reviewer's words.
    public var summary: String {
        func short(_ key: String) -> String { String((detail[key]?.stringValue ?? "?").prefix(8)) }
        switch kind {
        case .duplicateApplication:
            let rule = detail["rule"]?.stringValue ?? ""
            if let kept = keptApplicationID {
                let others = applicationIDs.filter { $0 != kept }.map { String($0.lowercased.prefix(8)) }
                return "resolved: kept \(kept.lowercased.prefix(8)), withdrew \(others.joined(separator: ", ")) (detected: \(rule))"
            }
            return "kept \(short("kept")), held \(short("held")): \(rule)"
        case .concurrentAmendment:
            let paths = (detail["fields"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }
            return "\(paths.joined(separator: ", ")): the later occurred_at won, the other values are kept here"
        case .invalidTransition:
            let type = detail["event_type"]?.stringValue ?? "?"
            let status = detail["status"]?.stringValue ?? "?"
            return "\(type) not applied in \(status): \(detail["reason"]?.stringValue ?? "")"
        case .pendingExpired:
            let type = detail["event_type"]?.stringValue ?? "?"
            let waited = detail["waited_seconds"]?.intValue ?? 0
            let horizon = detail["horizon_seconds"]?.intValue ?? 0
            return "\(type) waited \(Self.duration(waited)) for its prerequisite (horizon \(Self.duration(horizon)))"
        case .eventIdReuse:
            let type = detail.value(atPath: "incoming.type")?.stringValue ?? "?"
            let existing = detail["existing_type"]?.stringValue ?? "?"
            let ledger = detail["existing_ledger_id"]?.intValue.map(String.init) ?? "?"
            return "\(type) reused the event_id of ledger event \(ledger) (\(existing)); not applied"
        }
    }

    /// `3d 4h`, `5h 10m`, `42s`.
    static func duration(_ seconds: Int64) -> String {
        let d = seconds / 86_400, h = seconds % 86_400 / 3600, m = seconds % 3600 / 60
        if d > 0 { return h > 0 ? "\(d)d \(h)h" : "\(d)d" }
        if h > 0 { return m > 0 ? "\(h)h \(m)m" : "\(h)h" }
        if m > 0 { return "\(m)m" }
        return "\(seconds)s"
    }

    // MARK: Reading

    static let columns = """
        conflict_id, kind, status, application_ids, agency_codes, event_ids, ledger_ids, detail::text AS detail,
        (extract(epoch FROM detected_at) * 1000000)::int8 AS detected_us,
        (extract(epoch FROM resolved_at) * 1000000)::int8 AS resolved_us,
        resolved_by, outcome, note
        """

    /// Reads a row; `masked: false` keeps personal data (only for applying a decision).
    static func decode(_ row: Row, masked: Bool = true) throws -> ConflictRecord {
        let kindText = try row.decode(String.self, column: "kind")
        let statusText = try row.decode(String.self, column: "status")
        guard let kind = ConflictKind(rawValue: kindText), let status = ConflictStatus(rawValue: statusText) else {
            throw PostgresError(kind: .decoding, message: "unknown conflict kind or status", column: "kind")
        }
        let resolved = try row.decode(Int64?.self, column: "resolved_us")
        let detail = try JSONParser.parse(try row.decode(String.self, column: "detail"))
        return ConflictRecord(
            id: try row.decode(Int64.self, column: "conflict_id"),
            kind: kind, status: status,
            applicationIDs: try row.decode([UUID].self, column: "application_ids"),
            agencyCodes: try row.decode([String].self, column: "agency_codes"),
            eventIDs: try row.decode([UUID].self, column: "event_ids"),
            ledgerIDs: try row.decode([Int64].self, column: "ledger_ids"),
            detail: masked ? PersonalDataMask.json(detail) : detail,
            detectedAt: ConflictReview.displayed(try row.decode(Int64.self, column: "detected_us")),
            resolvedAt: resolved.map(ConflictReview.displayed),
            resolvedBy: try row.decode(String?.self, column: "resolved_by"),
            outcome: try row.decode(String?.self, column: "outcome").flatMap(ConflictOutcome.init(rawValue:)),
            note: try row.decode(String?.self, column: "note"))
    }

    // MARK: JSON

    /// The list entry: `{"conflict_id", "kind", "status", "detected_at", ...}` in that order.
    public var listJSON: OrderedJSON {
        .object([
            ("conflict_id", .value(.int(id))),
            ("kind", .value(.string(kind.rawValue))),
            ("status", .value(.string(status.rawValue))),
            ("detected_at", .value(.string(detectedAt.rfc3339))),
            ("application_ids", .value(.array(applicationIDs.map { .string($0.lowercased) }))),
            ("agency_codes", .value(.array(agencyCodes.map(JSONValue.string)))),
            ("summary", .value(.string(summary))),
            ("outcome", .value(outcome.map { .string($0.rawValue) } ?? .null)),
            ("kept_application_id", .value(keptApplicationID.map { .string($0.lowercased) } ?? .null)),
            ("resolved_at", .value(resolvedAt.map { .string($0.rfc3339) } ?? .null)),
            ("resolved_by", .value(resolvedBy.map(JSONValue.string) ?? .null)),
            ("note", .value(note.map(JSONValue.string) ?? .null)),
        ])
    }
}

/// Which conflicts `ConflictReview.list` returns.
public struct ConflictFilter: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case open, resolved, all
    }

    public var status: Status
    public var kind: ConflictKind?
    /// Conflicts naming this agency (either side).
    public var agency: String?
    /// Detected at or after this instant.
    public var detectedFrom: Timestamp?
    /// Detected before this instant.
    public var detectedBefore: Timestamp?

    public init(status: Status = .open, kind: ConflictKind? = nil, agency: String? = nil,
                detectedFrom: Timestamp? = nil, detectedBefore: Timestamp? = nil) {
        self.status = status
        self.kind = kind
        self.agency = agency
        self.detectedFrom = detectedFrom
        self.detectedBefore = detectedBefore
    }
}
