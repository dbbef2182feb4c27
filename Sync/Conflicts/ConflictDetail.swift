import CardCore
import Foundation

/// Everything a reviewer needs to decide one conflict (`cardsync conflicts show ID`). Identity
/// numbers and phone numbers are masked in every value.
public struct ConflictDetail: Sendable {
    public var conflict: ConflictRecord
    /// The applications the conflict names, in the conflict's order.
    public var applications: [Application]
    /// The events involved, in ledger order; a refused `event_id_reuse` event (not in the ledger)
    /// comes last with the outcome `refused`.
    public var events: [Event]
    /// For a concurrent amendment: both values of each contested field, and its value now.
    public var fields: [Field]
    /// What was applied and what was not, in a reviewer's words.
    public var findings: [String]
    /// The conflict_opened / conflict_resolved events recorded for this conflict.
    public var history: [Event]
    /// The decisions `cardsync conflicts resolve` accepts for it now (empty once settled).
    public var decisions: [String]

    /// One application as the centre holds it now.
    public struct Application: Sendable, Equatable {
        public var applicationID: UUID
        /// False when the centre never received the application's `submitted`.
        public var known: Bool
        public var owningAgency: String?
        public var channel: String?
        public var status: ApplicationStatus?
        public var heldStatus: ApplicationStatus?
        public var version: Int?
        public var submittedAt: Timestamp?
        public var cardNumber: String?
        /// `kept` or `held` for a duplicate, else nil.
        public var role: String?
        /// `{"child", "guardian", "household", "documents"}`, masked.
        public var form: JSONValue

        /// The form value at a path as display text (`documents` joined by commas; "" if absent).
        public func formText(_ path: String) -> String {
            ConflictDetail.text(form.value(atPath: path))
        }
    }

    /// One event involved in the conflict.
    public struct Event: Sendable, Equatable {
        /// nil for a refused event that never entered the ledger.
        public var ledgerID: Int64?
        public var eventID: UUID
        public var applicationID: UUID
        public var type: String
        public var agencyCode: String?
        public var seq: Int64?
        public var occurredAt: Timestamp?
        /// applied, pending, not_applied; `refused` for an event_id_reuse's second event.
        public var outcome: String
        /// The event's data, masked.
        public var data: JSONValue
    }

    /// One contested field of a concurrent amendment.
    public struct Field: Sendable, Equatable {
        public var path: String
        public var appliedValue: JSONValue
        public var losingValue: JSONValue
        /// The value the application holds now (it may have changed again since).
        public var currentValue: JSONValue?
        /// `this_event` (the late-arriving amendment won) or `earlier_change`.
        public var winner: String
        public var earlierChangeLedgerID: Int64?
    }

    /// The form paths shown side by side, in reading order.
    public static let formPaths = [
        "child.name", "child.id_number", "child.birth_date", "child.sex",
        "guardian.name", "guardian.id_number", "guardian.relationship", "guardian.phone",
        "household.register_number", "household.address", "documents",
    ]

    /// Display text of a JSON value: strings as they are, arrays joined by ", ", null as "".
    public static func text(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return ""
        case .string(let s)?: return s
        case .array(let items)?: return items.map { text($0) }.joined(separator: ", ")
        case let other?: return JSONWriter.string(other)
        }
    }

    // MARK: JSON

    /// `conflicts show ID --json`.
    public var json: OrderedJSON {
        let c = conflict
        func optional(_ s: String?) -> OrderedJSON { .value(s.map(JSONValue.string) ?? .null) }
        return .object([
            ("conflict_id", .value(.int(c.id))),
            ("kind", .value(.string(c.kind.rawValue))),
            ("status", .value(.string(c.status.rawValue))),
            ("detected_at", .value(.string(c.detectedAt.rfc3339))),
            ("outcome", optional(c.outcome?.rawValue)),
            ("resolved_at", optional(c.resolvedAt?.rfc3339)),
            ("resolved_by", optional(c.resolvedBy)),
            ("note", optional(c.note)),
            ("agency_codes", .value(.array(c.agencyCodes.map(JSONValue.string)))),
            ("summary", .value(.string(c.summary))),
            ("findings", .value(.array(findings.map(JSONValue.string)))),
            ("applications", .array(applications.map { a in
                .object([
                    ("application_id", .value(.string(a.applicationID.lowercased))),
                    ("known", .value(.bool(a.known))),
                    ("role", optional(a.role)),
                    ("owning_agency", optional(a.owningAgency)),
                    ("channel", optional(a.channel)),
                    ("status", optional(a.status?.rawValue)),
                    ("held_status", optional(a.heldStatus?.rawValue)),
                    ("version", .value(a.version.map { .int(Int64($0)) } ?? .null)),
                    ("submitted_at", optional(a.submittedAt?.rfc3339)),
                    ("card_number", optional(a.cardNumber)),
                    ("form", .value(a.form)),
                ])
            })),
            ("events", .array(events.map(Self.eventJSON))),
            ("fields", .array(fields.map { f in
                .object([
                    ("path", .value(.string(f.path))),
                    ("applied_value", .value(f.appliedValue)),
                    ("losing_value", .value(f.losingValue)),
                    ("current_value", .value(f.currentValue ?? .null)),
                    ("winner", .value(.string(f.winner))),
                    ("earlier_change_ledger_id", .value(f.earlierChangeLedgerID.map { .int($0) } ?? .null)),
                ])
            })),
            ("detail", .value(c.detail)),
            ("history", .array(history.map(Self.eventJSON))),
            ("decisions", .value(.array(decisions.map(JSONValue.string)))),
        ])
    }

    static func eventJSON(_ e: Event) -> OrderedJSON {
        .object([
            ("ledger_id", .value(e.ledgerID.map { .int($0) } ?? .null)),
            ("event_id", .value(.string(e.eventID.lowercased))),
            ("application_id", .value(.string(e.applicationID.lowercased))),
            ("type", .value(.string(e.type))),
            ("agency_code", .value(e.agencyCode.map(JSONValue.string) ?? .null)),
            ("seq", .value(e.seq.map { .int($0) } ?? .null)),
            ("occurred_at", .value(e.occurredAt.map { .string($0.rfc3339) } ?? .null)),
            ("outcome", .value(.string(e.outcome))),
            ("data", .value(e.data)),
        ])
    }
}
