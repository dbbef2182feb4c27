/// Every event type the ledger can hold, by who may record it.
///
/// Agencies record the first five in their outbox; the bureau records its decisions centrally;
/// the system records conflict events when detection or resolution changes an application.
public enum EventType: String, Sendable, CaseIterable, Codable {
    // Agency events (outbox.jsonl)
    case submitted
    case amended
    case documentsVerified = "documents_verified"
    case withdrawn
    case cardIssued = "card_issued"
    // Bureau decisions (`cardsync bureau ...`)
    case approved
    case rejected
    case returned
    case cardProduced = "card_produced"
    case cardDispatched = "card_dispatched"
    // Conflict events, recorded by cardsync itself
    case conflictOpened = "conflict_opened"
    case conflictResolved = "conflict_resolved"

    /// Who is allowed to record an event of this type.
    public enum Origin: String, Sendable { case agency, bureau, system }

    public var origin: Origin {
        switch self {
        case .submitted, .amended, .documentsVerified, .withdrawn, .cardIssued: return .agency
        case .approved, .rejected, .returned, .cardProduced, .cardDispatched: return .bureau
        case .conflictOpened, .conflictResolved: return .system
        }
    }

    /// Types an agency may write to its outbox.
    public static let agencyTypes: [EventType] = allCases.filter { $0.origin == .agency }
    /// Types the bureau may record.
    public static let bureauTypes: [EventType] = allCases.filter { $0.origin == .bureau }

    /// Whether this event type is delivered to agencies through `inbox.jsonl`.
    public var isInboxDecision: Bool { origin != .agency }
}
