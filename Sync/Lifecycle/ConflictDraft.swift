import CardCore
import Foundation

/// A conflict found by the fold, before it has an id. The merge writer gives it one and stores
/// it in `cardsync.conflicts`.
public struct ConflictDraft: Sendable, Equatable {
    public var kind: ConflictKind
    /// `open`, or resolved automatically with `outcome`.
    public var isOpen: Bool
    public var outcome: ConflictOutcome?
    public var applicationIDs: [UUID]
    public var agencyCodes: [String]
    public var eventIDs: [UUID]
    public var ledgerIDs: [Int64]
    /// What a reviewer needs: what was applied and what was not, and why.
    public var detail: JSONValue

    public init(kind: ConflictKind, isOpen: Bool, outcome: ConflictOutcome? = nil, applicationIDs: [UUID],
                agencyCodes: [String], eventIDs: [UUID], ledgerIDs: [Int64], detail: JSONValue) {
        self.kind = kind
        self.isOpen = isOpen
        self.outcome = outcome
        self.applicationIDs = applicationIDs
        // A conflict between two applications of one agency names that agency once.
        var seen = Set<String>()
        self.agencyCodes = agencyCodes.filter { seen.insert($0).inserted }
        self.eventIDs = eventIDs
        self.ledgerIDs = ledgerIDs
        self.detail = detail
    }
}
