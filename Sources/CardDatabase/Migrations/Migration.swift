/// One versioned schema change. Its SQL runs in a single transaction together with the row
/// that records it, so a migration is either wholly applied and recorded, or not at all.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Every migration cardsync ships, in the order they apply.
    public static let all: [Migration] = [
        migration0001CentralSchema,
        migration0002AgencyRoles,
        migration0003BulkSync,
        migration0004BytewiseKeys,
        migration0005CentreIdentity,
        migration0006AgencyIsolation,
        migration0007PartitionedLedger,
    ]
}
