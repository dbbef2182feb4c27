/// What one merge did, for the sync summary (`sync --json`) and the bureau commands.
public struct MergeResult: Sendable, Equatable {
    /// New events written to the ledger (applied, pending or not applicable).
    public var accepted = 0
    /// Events the ledger already had with the same content: counted, nothing changed.
    public var alreadyPresent = 0
    /// Of the accepted events, those held for a prerequisite.
    public var pending = 0
    /// Of the accepted events, those that can never apply.
    public var notApplied = 0
    /// Conflicts this merge detected (any kind, including automatically resolved ones).
    public var conflictsOpened = 0
    /// Events refused because their event_id was already used for different content.
    public var eventIDReuses = 0
    /// Ledger ids of the accepted events, in input order (for callers that report them).
    public var ledgerIDs: [Int64] = []

    public init() {}

    public static func + (a: MergeResult, b: MergeResult) -> MergeResult {
        var r = MergeResult()
        r.accepted = a.accepted + b.accepted
        r.alreadyPresent = a.alreadyPresent + b.alreadyPresent
        r.pending = a.pending + b.pending
        r.notApplied = a.notApplied + b.notApplied
        r.conflictsOpened = a.conflictsOpened + b.conflictsOpened
        r.eventIDReuses = a.eventIDReuses + b.eventIDReuses
        r.ledgerIDs = a.ledgerIDs + b.ledgerIDs
        return r
    }
}
