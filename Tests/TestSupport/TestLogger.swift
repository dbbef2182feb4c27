import Logging

extension Logger {
    /// The logger tests hand to the library types, which take theirs from the caller.
    public static let test = Logger(label: "cardsync.test")
}
