/// A person's sex as written in the queue format (`M` or `F`) and encoded in the 17th digit
/// of a resident identity number (odd = male, even = female).
public enum Sex: String, Sendable, Hashable, CaseIterable, Codable {
    case male = "M"
    case female = "F"
}
