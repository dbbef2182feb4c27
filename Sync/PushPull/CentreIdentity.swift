import Foundation
import PostgresClient

/// The central database's identity (`cardsync.centre_identity`), made once when it is migrated.
///
/// A queue records it at its first sync. A restore from the same centre's backup brings the same
/// id back, so the restore is recognised (and what the centre lost is pushed again), while a
/// different central database is refused unless the operator says the agency moved.
enum CentreIdentity {
    static func read(on connection: Connection) throws -> UUID {
        guard let row = try connection.query("SELECT centre_id FROM cardsync.centre_identity").first else {
            throw SyncError("the central database has no identity row (cardsync.centre_identity is empty): it was changed by hand; restore it from a backup")
        }
        return try row.decode(UUID.self, column: "centre_id")
    }
}
