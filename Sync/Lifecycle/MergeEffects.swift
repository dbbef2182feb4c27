import CardCore
import Foundation

/// Everything one run of the fold decided, for the merge writer to store in one transaction.
public struct MergeEffects: Sendable {
    /// New ledger rows in apply order: the batch's events and the system events the fold
    /// created, each with its outcome.
    public var newEvents: [(event: LedgerEvent, outcome: EventOutcome)] = []
    /// Outcome changes of events already in the ledger as pending.
    public var outcomeChanges: [Int64: EventOutcome] = [:]
    /// Applications whose state changed.
    public var changedApplications: Set<UUID> = []
    public var conflicts: [ConflictDraft] = []
    /// Conflicts whose applications' `submitted` events belong in the conflict's event list.
    public var conflictsNamingSubmissions: Set<Int> = []
    /// System events whose `data.conflict_id` is the id the writer gives `conflicts[index]`.
    public var conflictReferences: [Int64: Int] = [:]
    /// Inbox deliveries due, in order.
    public var deliveries: [(agencyCode: String, ledgerID: Int64)] = []
    /// Formerly pending events that applied now (their `pending_expired` conflicts resolve).
    public var releasedPending: [Int64] = []
    /// Formerly pending events that, re-checked, can never apply (their `pending_expired`
    /// conflicts give way to the `invalid_transition` conflict that says why).
    public var refusedPending: [Int64] = []

    public init() {}
}
