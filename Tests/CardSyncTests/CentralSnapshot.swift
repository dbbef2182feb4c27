import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// MARK: - Canonical central state

/// The central state without anything that depends on how ids were handed out (a killed
/// transaction burns sequence values; system events get random event ids), so that a run that
/// was interrupted can be compared with one that was not.
struct CentralSnapshot: Equatable, Sendable, CustomStringConvertible {
    /// Agency and bureau events in ledger order: event id, type, outcome, agency, seq.
    var ledger: [String]
    /// System events in ledger order: application, type, data without the conflict id.
    var systemEvents: [String]
    /// Every application row (field stamps without their ledger ids; last_ledger_id left out).
    var applications: [String]
    /// Conflicts, sorted: kind, status, outcome, applications, agencies, events.
    var conflicts: [String]
    /// Deliveries in delivery order: agency and the delivered event (normalized as above).
    var deliveries: [String]
    /// The centre's pushed high-water mark per agency.
    var pushedSeq: [String]

    init(_ world: SyncWorld) throws {
        ledger = try world.texts("""
            SELECT concat_ws(' ', event_id, type, outcome, agency_code, seq) FROM cardsync.ledger
            WHERE origin <> 'system' ORDER BY ledger_id
            """)
        systemEvents = try world.texts("""
            SELECT concat_ws(' ', application_id, type, outcome, (data - 'conflict_id')::text) FROM cardsync.ledger
            WHERE origin = 'system' ORDER BY ledger_id
            """)
        applications = try world.texts("""
            SELECT ROW(application_id, owning_agency, channel, child_id_number, status, held_status, version, form,
                       (SELECT jsonb_object_agg(k, jsonb_build_array(v -> 0, v -> 1)) FROM jsonb_each(field_stamps) AS e(k, v)),
                       verified_documents, card_number, dispatched_to, issued_by, submitted_at, closed_at)::text
            FROM cardsync.applications ORDER BY application_id
            """)
        conflicts = try world.texts("""
            SELECT ROW(kind, status, outcome, application_ids, agency_codes, event_ids)::text
            FROM cardsync.conflicts ORDER BY 1
            """)
        deliveries = try world.texts("""
            SELECT d.agency_code || ' ' || CASE WHEN l.origin = 'system'
                THEN concat_ws(' ', l.application_id, l.type, (l.data - 'conflict_id')::text)
                ELSE l.event_id::text END
            FROM cardsync.deliveries d JOIN cardsync.ledger l USING (ledger_id) ORDER BY d.delivery_id
            """)
        pushedSeq = try world.texts("SELECT agency_code || ' ' || pushed_seq FROM cardsync.agency_sync_state ORDER BY 1")
    }

    var description: String {
        "ledger \(ledger.count), system events \(systemEvents.count), applications \(applications.count), "
            + "conflicts \(conflicts.count), deliveries \(deliveries.count), pushed \(pushedSeq)"
    }

    /// Which parts differ (for a readable failure).
    func differences(from other: CentralSnapshot) -> [String] {
        var out: [String] = []
        func diff(_ name: String, _ a: [String], _ b: [String]) {
            guard a != b else { return }
            let onlyA = Set(a).subtracting(b), onlyB = Set(b).subtracting(a)
            out.append("\(name): \(a.count) vs \(b.count); only here: \(onlyA.prefix(3)); only there: \(onlyB.prefix(3))"
                       + (onlyA.isEmpty && onlyB.isEmpty ? " (same elements, different order or multiplicity)" : ""))
        }
        diff("ledger", ledger, other.ledger)
        diff("system events", systemEvents, other.systemEvents)
        diff("applications", applications, other.applications)
        diff("conflicts", conflicts, other.conflicts)
        diff("deliveries", deliveries, other.deliveries)
        diff("pushed_seq", pushedSeq, other.pushedSeq)
        return out
    }
}
