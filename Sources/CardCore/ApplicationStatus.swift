/// The status of an application, as in the lifecycle diagram of ../shared/spec/lifecycle.md.
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

    /// Statuses past `submitted` in the duplicate rule's sense: the bureau has already acted on them
    /// (returned for correction, approved, or further).
    public var isPastSubmitted: Bool {
        switch self {
        case .returned, .approved, .produced, .dispatched: return true
        default: return false
        }
    }
}
