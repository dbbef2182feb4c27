import CardCore

/// Knobs of `cardsync sync`; the defaults are what an agency wants.
public struct SyncOptions: Sendable {
    /// Outbox lines per batch: one central transaction each. Large enough that the per-batch
    /// round trips vanish, small enough that peak memory stays well under 150 MiB.
    public var batchSize = 10_000
    /// How long an event may wait for its prerequisite before a `pending_expired` conflict opens.
    public var pendingHorizonSeconds: Int64 = 14 * 86_400
    /// Wait this long for another sync of the same agency to finish; nil fails at once.
    public var lockWait: Duration? = nil
    /// Deliveries pulled per round trip.
    public var pullPageSize = 10_000
    /// Sync a queue with a central database other than the one it synced with before (the
    /// agency moved centre): every outbox event is pushed to the new one.
    public var acceptNewCentre = false
    /// How long a sync with an agency's own role waits for the bureau's merge of its batches
    /// before it pulls (what is not merged by then is reported as `unmerged`).
    public var mergeWait: Duration = .seconds(10)
    /// The syncing machine's clock (for `occurred_in_future`).
    public var clock: @Sendable () -> Timestamp = { .now }

    public init() {}
}

/// What one agency's sync did: the `sync --json` row (../shared/spec/cli.md).
public struct AgencySyncResult: Sendable, Equatable {
    public var agencyCode: String
    public var pushed = 0
    public var alreadyPresent = 0
    public var quarantined = 0
    public var pending = 0
    public var conflictsOpened = 0
    public var pulled = 0
    public var seconds = 0.0
    /// Events pushed again because the centre had lost them (restored from a backup).
    public var repushedAfterRestore = 0
    /// Events staged for the bureau's merge but not applied when the sync ended.
    public var unmerged = 0
    /// The sync connected with the agency's own role and staged (`unmerged` is then reported).
    public var staged = false

    public init(agencyCode: String) { self.agencyCode = agencyCode }

    /// The row of cli.md; `unmerged` only for a sync that staged (an in-process merge leaves
    /// nothing unmerged, and its row keeps exactly the contract's keys).
    public var json: JSONValue {
        var row: [String: JSONValue] = [
            "agency_code": .string(agencyCode), "pushed": .int(Int64(pushed)),
            "already_present": .int(Int64(alreadyPresent)), "quarantined": .int(Int64(quarantined)),
            "pending": .int(Int64(pending)), "conflicts_opened": .int(Int64(conflictsOpened)),
            "pulled": .int(Int64(pulled)), "seconds": .double((seconds * 1000).rounded() / 1000),
        ]
        if staged { row["unmerged"] = .int(Int64(unmerged)) }
        return .object(row)
    }
}
