import Foundation

/// One validated outbox line: an event recorded at an agency.
public struct QueueEvent: Sendable, Equatable {
    /// The line's `seq`, strictly increasing down the outbox.
    public var seq: Int64
    public var eventID: UUID
    public var applicationID: UUID
    public var type: EventType
    public var occurredAt: Timestamp
    /// The validated `data` object.
    public var data: JSONValue
    /// 1-based line number in `outbox.jsonl`.
    public var lineNumber: Int

    public init(seq: Int64, eventID: UUID, applicationID: UUID, type: EventType, occurredAt: Timestamp,
                data: JSONValue, lineNumber: Int) {
        self.seq = seq
        self.eventID = eventID
        self.applicationID = applicationID
        self.type = type
        self.occurredAt = occurredAt
        self.data = data
        self.lineNumber = lineNumber
    }
}

/// Why an outbox line was quarantined: the spec's error code and a human explanation.
public struct QuarantineReason: Error, Sendable, Equatable {
    public var code: QuarantineCode
    public var detail: String

    public init(_ code: QuarantineCode, _ detail: String) {
        self.code = code
        self.detail = detail
    }
}

/// The validation error codes of ../shared/spec/queue-format.md.
public enum QuarantineCode: String, Sendable, CaseIterable, Codable {
    case malformedJSON = "malformed_json"
    case lineTooLong = "line_too_long"
    case missingField = "missing_field"
    case wrongType = "wrong_type"
    case seqNotIncreasing = "seq_not_increasing"
    case badUUID = "bad_uuid"
    case unknownType = "unknown_type"
    case badTimestamp = "bad_timestamp"
    case occurredInFuture = "occurred_in_future"
    case invalidIDNumber = "invalid_id_number"
    case idBirthMismatch = "id_birth_mismatch"
    case notAMinor = "not_a_minor"
    case guardianNotAdult = "guardian_not_adult"
    case missingDocument = "missing_document"
    case badPhone = "bad_phone"
    case immutableField = "immutable_field"
    case badEnum = "bad_enum"
}
