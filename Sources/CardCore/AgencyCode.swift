/// An agency's code: `^[A-Z0-9][A-Z0-9-]{1,31}$` (capital letters, digits and dashes, 2 to 32
/// characters), the rule of queue-format.md that the central schema's CHECK also states.
///
/// The one place the rule is written in Swift: queue validation, the agency register and every
/// command-line option that takes a code go through it.
public struct AgencyCode: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// The rule as people read it, for messages.
    public static let rule = "^[A-Z0-9][A-Z0-9-]{1,31}$"

    /// nil unless `text` follows the rule.
    public init?(_ text: String) {
        guard Self.isValid(text) else { return nil }
        rawValue = text
    }

    /// Whether `code` follows the rule; without regular expressions, since sync checks every
    /// event's agency code.
    public static func isValid(_ code: String) -> Bool {
        var count = 0
        for (index, byte) in code.utf8.enumerated() {
            let upperAlnum = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            guard upperAlnum || (index > 0 && byte == 0x2D) else { return false }
            count += 1
            if count > 32 { return false }
        }
        return count >= 2
    }

    /// What is wrong with `text`, in words (the value is a code, not personal data).
    public static func problem(_ text: String) -> String {
        "agency code '\(text)' must match \(rule) (capital letters, digits and dashes, 2 to 32 characters)"
    }

    public var description: String { rawValue }
    public static func < (a: AgencyCode, b: AgencyCode) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard Self.isValid(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: Self.problem(text)))
        }
        rawValue = text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
