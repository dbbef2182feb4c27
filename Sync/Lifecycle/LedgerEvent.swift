import CardCore
import Foundation

/// An event as the ledger holds it, in the order it is applied (`ledgerID`).
public struct LedgerEvent: Sendable, Equatable {
    public var ledgerID: Int64
    public var eventID: UUID
    public var applicationID: UUID
    public var type: EventType
    /// The recording agency, for agency events.
    public var agencyCode: String?
    /// The outbox seq, for agency events.
    public var seq: Int64?
    public var occurredAt: Timestamp
    public var data: JSONValue

    public init(ledgerID: Int64, eventID: UUID, applicationID: UUID, type: EventType, agencyCode: String?,
                seq: Int64?, occurredAt: Timestamp, data: JSONValue) {
        self.ledgerID = ledgerID
        self.eventID = eventID
        self.applicationID = applicationID
        self.type = type
        self.agencyCode = agencyCode
        self.seq = seq
        self.occurredAt = occurredAt
        self.data = data
    }

    public var origin: EventType.Origin { type.origin }

    /// The child's identity number a submission names (two key look-ups: the merge asks this
    /// of every submission twice, and parsing a dotted path each time showed in profiles).
    public var submittedChildID: String? {
        type == .submitted ? data["child"]?["id_number"]?.stringValue : nil
    }
}

/// What became of an event in the fold.
public enum EventOutcome: String, Sendable, Equatable {
    /// It changed the application (or was recorded as applied with no change to make).
    case applied
    /// Held until its prerequisite arrives; applied automatically then.
    case pending
    /// It can never apply; an `invalid_transition` conflict says why.
    case notApplied = "not_applied"
}
