/// A registered handling agency. Its `code` follows `AgencyCode`'s rule wherever it came from
/// (agency.json, the register, an option): each of those checks it with `AgencyCode`.
public struct Agency: Sendable, Hashable, Codable {
    public var code: String
    public var name: String
    public var district: String?
    public var channel: AgencyChannel

    public init(code: String, name: String, district: String? = nil, channel: AgencyChannel = .counter) {
        self.code = code
        self.name = name
        self.district = district
        self.channel = channel
    }
}
