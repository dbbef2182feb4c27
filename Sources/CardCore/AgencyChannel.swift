/// How an agency takes applications: at a counter, or the online service.
public enum AgencyChannel: String, Sendable, CaseIterable, Codable {
    case counter
    case online
}

/// A registered handling agency.
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

    /// `^[A-Z0-9][A-Z0-9-]{1,31}$`, checked without regular expressions (hot path in sync).
    public static func isValidCode(_ code: String) -> Bool {
        let bytes = Array(code.utf8)
        guard bytes.count >= 2, bytes.count <= 32 else { return false }
        func upperAlnum(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) }
        guard upperAlnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { upperAlnum($0) || $0 == 0x2D }
    }
}
