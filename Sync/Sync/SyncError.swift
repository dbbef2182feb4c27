/// Why a sync could not be done (exit status 1): each names the cause and what to do.
public struct SyncError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func agencyBusy(_ code: String) -> SyncError {
        SyncError("another cardsync sync of agency \(code) is running against the central database; wait for it to finish, then run sync again")
    }
}
