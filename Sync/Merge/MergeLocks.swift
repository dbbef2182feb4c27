import Foundation
import PostgresClient

/// Advisory lock keys shared by every cardsync process that touches the central database.
public enum MergeLocks {
    /// Held (transaction-scoped) while events are applied: ledger, delivery and conflict ids are
    /// handed out under it, so id order is apply order and commit order, and concurrent syncs
    /// of one child's duplicate submissions see each other.
    public static let merge: Int64 = 0x6361_7264_6D65_7267 // "cardmerg"
    /// First key of the session-scoped per-agency sync lock; the second is `hashtext(code)`.
    public static let agencySyncClass: Int32 = 0x6361_7264 // "card"
}

extension MergeLocks {
    /// Takes the centre's session lock for one agency (one sync or reconcile per agency at a
    /// time). Fails at once, or after `wait`, with a message naming the agency.
    static func lockAgency(_ code: String, on connection: Connection, wait: Duration?) throws {
        let deadline = wait.map { ContinuousClock.now + $0 }
        while true {
            let rows = try connection.query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked",
                                            [.int32(agencySyncClass), .text(code)])
            if try rows.first?.decode(Bool.self, column: "locked") == true { return }
            guard let deadline, ContinuousClock.now < deadline else { throw SyncError.agencyBusy(code) }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Releases the agency's session lock (best effort: closing the session releases it too).
    static func unlockAgency(_ code: String, on connection: Connection) {
        _ = try? connection.execute("SELECT pg_advisory_unlock($1, hashtext($2))", [.int32(agencySyncClass), .text(code)])
    }
}
