import CardCore
import Foundation

/// The merge's decisions, apart from reading and writing: state in, decisions out.
///
/// `CentralMerge` looks up what a batch touches (its applications, their children's open
/// applications, their pending events), numbers the batch's events, and hands all of it here;
/// the lifecycle fold decides outcomes, conflicts, deliveries and the applications' new state.
/// Nothing here touches a connection, so a plan can be tested, and reasoned about, alone; the
/// ledger-side writers (`LedgerWriter`, `ConflictWriter`, deliveries) and the projection-side
/// writer (`ProjectionWriter`) then write exactly what the plan says.
enum MergePlanner {
    struct Plan {
        /// New ledger rows with outcomes, outcome changes, conflicts, deliveries.
        var effects: MergeEffects
        /// The store after the fold.
        var store: LifecycleStore
        /// Changed applications in their new state (what the projection writes).
        var changed: [ApplicationState]
        /// The highest ledger id the plan writes (nil: it writes no ledger row).
        var lastLedgerID: Int64?
    }

    /// Folds `numbered` (events with their ledger ids, in order) into `store`. System events
    /// (conflict_opened) take ledger ids from `firstSystemLedgerID` on; `reuseConflicts` are
    /// event_id_reuse conflicts found before the fold, listed after the fold's own.
    static func plan(_ numbered: [LedgerEvent], reuseConflicts: [ConflictDraft], store: LifecycleStore, now: Timestamp,
                     firstSystemLedgerID: Int64) -> Plan {
        var counter = firstSystemLedgerID
        var engine = LifecycleEngine(store: store, now: now) {
            defer { counter += 1 }
            return counter
        }
        for event in numbered { engine.ingest(event) }
        var effects = engine.effects
        // After the fold's own conflicts, whose indexes its system events refer to.
        effects.conflicts += reuseConflicts
        return Plan(effects: effects, store: engine.store,
                    changed: effects.changedApplications.compactMap { engine.store[$0] },
                    lastLedgerID: effects.newEvents.lazy.map(\.event.ledgerID).max())
    }
}
