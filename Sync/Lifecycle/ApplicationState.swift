import CardCore
import Foundation

/// When a changeable field last changed: the application version that change produced and the
/// instant it occurred. Concurrent amendments are detected and merged per field from these.
public struct FieldStamp: Sendable, Equatable {
    public var version: Int
    /// Microseconds since 1970 of the change's `occurred_at`.
    public var occurredAt: Int64
    /// The ledger row that made the change (named in a concurrent-amendment conflict).
    public var ledgerID: Int64

    public init(version: Int, occurredAt: Int64, ledgerID: Int64) {
        self.version = version
        self.occurredAt = occurredAt
        self.ledgerID = ledgerID
    }
}

/// One application's current state: a row of the central projection, and the value the
/// lifecycle fold carries from event to event.
public struct ApplicationState: Sendable, Equatable {
    public var applicationID: UUID
    public var owningAgency: String
    public var channel: String
    public var childIDNumber: String
    public var status: ApplicationStatus
    /// The status an `on_hold` application returns to if its duplicate conflict keeps it.
    public var heldStatus: ApplicationStatus?
    public var version: Int
    /// `{"child", "guardian", "household", "documents"}` as submitted and amended.
    public var form: JSONValue
    public var fieldStamps: [String: FieldStamp]
    /// Sorted, without repeats.
    public var verifiedDocuments: [String]
    public var cardNumber: String?
    public var dispatchedTo: String?
    public var issuedBy: String?
    public var submittedAt: Timestamp
    public var closedAt: Timestamp?
    public var lastLedgerID: Int64

    public init(applicationID: UUID, owningAgency: String, channel: String, childIDNumber: String,
                status: ApplicationStatus, heldStatus: ApplicationStatus?, version: Int, form: JSONValue,
                fieldStamps: [String: FieldStamp], verifiedDocuments: [String], cardNumber: String?,
                dispatchedTo: String?, issuedBy: String?, submittedAt: Timestamp, closedAt: Timestamp?,
                lastLedgerID: Int64) {
        self.applicationID = applicationID
        self.owningAgency = owningAgency
        self.channel = channel
        self.childIDNumber = childIDNumber
        self.status = status
        self.heldStatus = heldStatus
        self.version = version
        self.form = form
        self.fieldStamps = fieldStamps
        self.verifiedDocuments = verifiedDocuments
        self.cardNumber = cardNumber
        self.dispatchedTo = dispatchedTo
        self.issuedBy = issuedBy
        self.submittedAt = submittedAt
        self.closedAt = closedAt
        self.lastLedgerID = lastLedgerID
    }

    /// Open and not on hold: the one application per child the bureau is working on.
    public var isActive: Bool { status.isOpen && status != .onHold }

    /// The value at a dotted form path such as `guardian.phone`.
    public func formValue(at path: String) -> JSONValue? { form.value(atPath: path) }

    /// Replaces the value at a dotted form path, creating intermediate objects when missing.
    public mutating func setFormValue(_ value: JSONValue, at path: String) {
        form = Self.setting(value, in: form, path: path.split(separator: ".").map(String.init)[...])
    }

    private static func setting(_ value: JSONValue, in object: JSONValue, path: ArraySlice<String>) -> JSONValue {
        guard let key = path.first else { return value }
        var dict = object.objectValue ?? [:]
        dict[key] = setting(value, in: dict[key] ?? .object([:]), path: path.dropFirst())
        return .object(dict)
    }
}
