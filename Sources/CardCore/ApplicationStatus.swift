/// The status of an application, as in the lifecycle of docs/lifecycle.md.
public enum ApplicationStatus: String, Sendable, CaseIterable, Codable {
    case submitted
    case returned
    case approved
    case produced
    case dispatched
    case issued
    case rejected
    case withdrawn
    /// A duplicate application waiting for a conflict decision.
    case onHold = "on_hold"

    /// Terminal statuses never change again.
    public var isTerminal: Bool {
        switch self {
        case .issued, .rejected, .withdrawn: return true
        default: return false
        }
    }

    /// Open means not terminal; `on_hold` is open.
    public var isOpen: Bool { !isTerminal }

    /// Active: open and not on hold. A child has at most one active application (the centre's
    /// partial unique index on `applications` says so with the same list).
    public var isActive: Bool { isOpen && self != .onHold }

    /// The active statuses, in declaration order.
    public static let active: [ApplicationStatus] = allCases.filter(\.isActive)

    /// The active statuses' names, bound as a `text[]` parameter (`status = ANY($n::text[])`).
    /// The server plans an unnamed statement with the value bound, so it can still prove the
    /// predicate implies the partial unique index's and use that index (BatchStateLoaderTests
    /// checks the plan).
    public static let activeNames: [String] = active.map(\.rawValue)

    /// Statuses past `submitted` in the duplicate rule's sense: the bureau has already acted on them
    /// (returned for correction, approved, or further).
    public var isPastSubmitted: Bool {
        switch self {
        case .returned, .approved, .produced, .dispatched: return true
        default: return false
        }
    }
}
