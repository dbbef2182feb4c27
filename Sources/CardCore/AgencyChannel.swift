/// How an agency takes applications: at a counter, or the online service.
public enum AgencyChannel: String, Sendable, CaseIterable, Codable {
    case counter
    case online
}
