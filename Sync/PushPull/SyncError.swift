import Foundation
import PostgresClient

/// Why a sync could not be done (exit status 1): each names the cause and what to do.
public struct SyncError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The error underneath, kept whole (not only as text in `message`) so that callers can
    /// still ask it things: `isRetryable`, its SQLSTATE, the statement that failed.
    public var cause: (any Error)?

    public init(_ message: String, cause: (any Error)? = nil) {
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// Worth running again: the cause was a broken connection or a concurrency failure.
    public var isRetryable: Bool {
        switch cause {
        case let error as PostgresError: error.isRetryable
        case let error as SyncError: error.isRetryable
        default: false
        }
    }

    /// The queue synced with another central database before (its state.json names it).
    static func otherCentre(queue: String, known: UUID, found: UUID) -> SyncError {
        SyncError("""
            \(queue) was synced with a different central database before (centre \(known.lowercased)); this one is \
            centre \(found.lowercased). A restore of the same centre from its backup keeps its id, so this is another \
            database: nothing was pushed. Check --database or CARDSYNC_DATABASE_URL; if the agency really moved to this \
            centre, run sync again with --new-centre and every outbox event is pushed to it
            """)
    }

    /// The sync connected with another agency's own role.
    static func roleOfOtherAgency(role agency: String, queue: String) -> SyncError {
        SyncError("this database role belongs to agency \(agency), but the queue is agency \(queue)'s: an agency's role may push only its own queue. Use the credentials cardsync agency credentials \(queue) printed")
    }

    static func agencyBusy(_ code: String) -> SyncError {
        SyncError("another cardsync sync of agency \(code) is running against the central database; wait for it to finish, then run sync again")
    }
}
