import CardCore
import Foundation

/// The application lifecycle as a fold over ledger events (../shared/spec/lifecycle.md).
///
/// Events are applied strictly in ledger order. An event whose prerequisite has not arrived is
/// held and retried, in its original order, each time its application changes. Every rule that
/// can raise a conflict is in this folder: duplicates (`submit`), concurrent amendments
/// (`AmendmentMerge`), impossible transitions (`TransitionRules`). The same code serves the
/// sync merge (on the slice of state a batch touches) and `db verify` (on the whole ledger),
/// so the projection is by construction a fold of the ledger.
public struct LifecycleEngine {
    public var store: LifecycleStore
    public private(set) var effects = MergeEffects()
    /// The instant detection happens (stamped on system events).
    private let now: Timestamp
    /// Hands out ledger ids for the system events the fold creates.
    private let allocateLedgerID: () -> Int64
    private var newEventIndex: [Int64: Int] = [:]

    public init(store: LifecycleStore, now: Timestamp, allocateLedgerID: @escaping () -> Int64) {
        self.store = store
        self.now = now
        self.allocateLedgerID = allocateLedgerID
    }

    /// Applies one new ledger event (and whatever it releases).
    public mutating func ingest(_ event: LedgerEvent) {
        newEventIndex[event.ledgerID] = effects.newEvents.count
        effects.newEvents.append((event, .pending))
        process(event)
    }

    /// Replays an event already in the ledger (verification): system `conflict_opened` rows
    /// are effects of other events, so they are recorded as applied and change nothing.
    public mutating func replay(_ event: LedgerEvent) {
        ingest(event)
    }

    /// Returns the effects so far and starts a new set (long replays keep memory flat).
    public mutating func takeEffects() -> MergeEffects {
        defer {
            effects = MergeEffects()
            newEventIndex.removeAll(keepingCapacity: true)
        }
        return effects
    }

    // MARK: Dispatch

    private mutating func process(_ event: LedgerEvent) {
        switch event.type {
        case .submitted:
            submit(event)
        case .conflictOpened:
            setOutcome(event.ledgerID, .applied)
        default:
            guard var app = store[event.applicationID] else {
                if event.type == .conflictResolved {
                    // A resolution for an application the centre never received (event id reuse):
                    // nothing to change; tell the agencies the conflict names.
                    setOutcome(event.ledgerID, .applied)
                    // The inbox line names a status; the centre has none for this application.
                    var data = event.data.objectValue ?? [:]
                    data["status"] = .null
                    replaceData(of: event.ledgerID, with: .object(data))
                    for agency in event.data["agency_codes"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                        effects.deliveries.append((agency, event.ledgerID))
                    }
                    return
                }
                hold(event)
                return
            }
            switch TransitionRules.verdict(for: event, on: app) {
            case .apply:
                apply(event, to: &app)
                releasePending(for: app.applicationID)
            case .wait:
                hold(event)
            case .never(let reason):
                refuse(event, app: app, reason: reason)
            }
        }
    }

    // MARK: submitted, and the duplicate rule

    private mutating func submit(_ event: LedgerEvent) {
        if let existing = store[event.applicationID] {
            refuse(event, app: existing, reason: "the application was already submitted")
            return
        }
        let data = event.data
        let child = event.submittedChildID ?? ""
        var form: [String: JSONValue] = [:]
        for key in ["child", "guardian", "household", "documents"] { form[key] = data[key] ?? .null }
        // Stamps are sparse: a field without one was last set by the submission (version 1).
        let stamps: [String: FieldStamp] = [:]
        var app = ApplicationState(
            applicationID: event.applicationID, owningAgency: event.agencyCode ?? "",
            channel: data["channel"]?.stringValue ?? "counter", childIDNumber: child,
            status: .submitted, heldStatus: nil, version: 1, form: .object(form), fieldStamps: stamps,
            verifiedDocuments: [], cardNumber: nil, dispatchedTo: nil, issuedBy: nil,
            submittedAt: event.occurredAt, closedAt: nil, lastLedgerID: event.ledgerID)

        let rivals = store.openApplications(ofChild: child)
        var duplicate: (kept: ApplicationState, held: ApplicationState, rule: String)?
        if let primary = rivals.first(where: \.isActive) {
            if primary.status.isPastSubmitted {
                duplicate = (primary, app, "the existing application is already \(primary.status.rawValue)")
            } else if precedes(app, primary) {
                var demoted = primary
                demoted.heldStatus = demoted.status
                demoted.status = .onHold
                demoted.version += 1
                demoted.lastLedgerID = event.ledgerID
                store.put(demoted)
                effects.changedApplications.insert(demoted.applicationID)
                duplicate = (app, demoted, tieRule(app, demoted))
            } else {
                duplicate = (primary, app, tieRule(primary, app))
            }
        } else if let card = store.issuedApplications(ofChild: child).first {
            // A replacement card is a different procedure: the issued one stays.
            duplicate = (card, app, "the child already holds an issued card")
        } else if let first = rivals.first {
            duplicate = (first, app, "every other open application of this child is on hold")
        }
        if let duplicate, duplicate.held.applicationID == app.applicationID {
            app.heldStatus = .submitted
            app.status = .onHold
        }
        store.put(app)
        effects.changedApplications.insert(app.applicationID)
        setOutcome(event.ledgerID, .applied)

        if let duplicate {
            let held = store[duplicate.held.applicationID] ?? duplicate.held
            let conflictIndex = effects.conflicts.count
            effects.conflicts.append(ConflictDraft(
                kind: .duplicateApplication, isOpen: true,
                applicationIDs: [duplicate.kept.applicationID, held.applicationID],
                agencyCodes: [duplicate.kept.owningAgency, held.owningAgency],
                eventIDs: [], ledgerIDs: [],
                detail: [
                    "kept": .string(duplicate.kept.applicationID.lowercased),
                    "held": .string(held.applicationID.lowercased),
                    "held_status": .string(held.heldStatus?.rawValue ?? "submitted"),
                    "rule": .string(duplicate.rule),
                    "detected_by_event": .string(event.eventID.lowercased),
                ]))
            effects.conflictsNamingSubmissions.insert(conflictIndex)
            emitConflictOpened(for: held, conflictIndex: conflictIndex, kind: .duplicateApplication)
        }
        releasePending(for: app.applicationID)
    }

    /// The duplicate rule's order: earlier `occurred_at`, then lower agency code, then lower id.
    private func precedes(_ a: ApplicationState, _ b: ApplicationState) -> Bool {
        (a.submittedAt, a.owningAgency, a.applicationID.lowercased)
            < (b.submittedAt, b.owningAgency, b.applicationID.lowercased)
    }

    private func tieRule(_ kept: ApplicationState, _ held: ApplicationState) -> String {
        if kept.submittedAt != held.submittedAt { return "the earlier occurred_at stays" }
        if kept.owningAgency != held.owningAgency { return "same occurred_at: the lower agency code stays" }
        return "same occurred_at and agency: the lower application id stays"
    }

    // MARK: Applying

    private mutating func apply(_ event: LedgerEvent, to app: inout ApplicationState) {
        // The status change comes from the transition table; here only what else the event records.
        switch event.type {
        case .amended:
            AmendmentMerge.apply(event, to: &app, conflicts: &effects.conflicts)
        case .documentsVerified:
            let docs = event.data["documents"]?.arrayValue?.compactMap(\.stringValue) ?? []
            app.verifiedDocuments = Array(Set(app.verifiedDocuments).union(docs)).sorted()
        case .cardIssued:
            app.issuedBy = event.agencyCode
        case .cardProduced:
            app.cardNumber = event.data["card_number"]?.stringValue
        case .cardDispatched:
            app.dispatchedTo = event.data["agency_code"]?.stringValue
        case .conflictResolved:
            applyResolution(event, to: &app)
        case .withdrawn, .approved, .rejected, .returned, .submitted, .conflictOpened:
            break
        }
        if event.type != .conflictResolved, event.type != .amended,
           let next = TransitionRules.status(after: event.type, from: app.status), next != app.status {
            if next.isTerminal { close(&app, as: next, at: event.occurredAt) } else { app.status = next }
        }
        app.version += 1
        app.lastLedgerID = event.ledgerID
        store.put(app)
        effects.changedApplications.insert(app.applicationID)
        setOutcome(event.ledgerID, .applied)
        if event.origin != .agency {
            effects.deliveries.append((app.owningAgency, event.ledgerID))
            if event.type == .cardDispatched, let target = app.dispatchedTo, target != app.owningAgency {
                effects.deliveries.append((target, event.ledgerID))
            }
        }
    }

    private func close(_ app: inout ApplicationState, as status: ApplicationStatus, at instant: Timestamp) {
        app.status = status
        app.heldStatus = nil
        app.closedAt = instant
    }

    /// A `conflict_resolved` event carries what the resolution does to this application
    /// (`action`), so that replaying the ledger needs nothing but the ledger.
    private mutating func applyResolution(_ event: LedgerEvent, to app: inout ApplicationState) {
        switch event.data["action"]?.stringValue {
        case "keep":
            if app.status == .onHold, let back = app.heldStatus {
                app.status = back
                app.heldStatus = nil
            }
        case "withdraw":
            if app.status.isOpen { close(&app, as: .withdrawn, at: event.occurredAt) }
        case "apply_changes":
            let newVersion = app.version + 1
            for (path, value) in event.data["changes"]?.objectValue ?? [:] {
                app.setFormValue(value, at: path)
                app.fieldStamps[path] = FieldStamp(version: newVersion, occurredAt: event.occurredAt.microseconds,
                                                   ledgerID: event.ledgerID)
            }
        default:
            break
        }
        // The inbox line says what the application's status is now.
        var data = event.data.objectValue ?? [:]
        data["status"] = .string(app.status.rawValue)
        replaceData(of: event.ledgerID, with: .object(data))
    }

    // MARK: Pending and refused events

    private mutating func hold(_ event: LedgerEvent) {
        store.hold(event)
        setOutcome(event.ledgerID, .pending)
    }

    /// Retries the application's held events in ledger order until none applies any more.
    private mutating func releasePending(for id: UUID) {
        var progressed = true
        while progressed {
            progressed = false
            guard let list = store.pending[id], !list.isEmpty, var app = store[id] else { return }
            for (index, event) in list.enumerated() {
                let verdict = TransitionRules.verdict(for: event, on: app)
                if case .wait = verdict { continue }
                store.pending[id]?.remove(at: index)
                if store.pending[id]?.isEmpty == true { store.pending[id] = nil }
                if case .never(let reason) = verdict {
                    refuse(event, app: app, reason: reason)
                    effects.refusedPending.append(event.ledgerID)
                } else {
                    apply(event, to: &app)
                    effects.releasedPending.append(event.ledgerID)
                }
                progressed = true
                break
            }
        }
    }

    private mutating func refuse(_ event: LedgerEvent, app: ApplicationState, reason: String) {
        setOutcome(event.ledgerID, .notApplied)
        effects.conflicts.append(ConflictDraft(
            kind: .invalidTransition, isOpen: true,
            applicationIDs: [event.applicationID],
            agencyCodes: [event.agencyCode ?? app.owningAgency, app.owningAgency],
            eventIDs: [event.eventID], ledgerIDs: [event.ledgerID],
            detail: [
                "event_type": .string(event.type.rawValue),
                "status": .string(app.status.rawValue),
                "reason": .string(reason),
                "occurred_at": .string(event.occurredAt.rfc3339),
                "applied": false,
            ]))
    }

    private mutating func emitConflictOpened(for app: ApplicationState, conflictIndex: Int, kind: ConflictKind) {
        let id = allocateLedgerID()
        let event = LedgerEvent(
            ledgerID: id, eventID: Self.conflictOpenedEventID(kind: kind, notified: app.applicationID,
                                                              between: effects.conflicts[conflictIndex].applicationIDs),
            applicationID: app.applicationID, type: .conflictOpened,
            agencyCode: nil, seq: nil, occurredAt: now,
            data: ["kind": .string(kind.rawValue), "status": .string(app.status.rawValue)])
        newEventIndex[id] = effects.newEvents.count
        effects.newEvents.append((event, .applied))
        effects.conflictReferences[id] = conflictIndex
        effects.deliveries.append((app.owningAgency, id))
    }

    /// The event_id of a `conflict_opened` notification: named after the conflict (its kind, the
    /// application told, the applications in conflict, in any order), not random. A centre
    /// restored from a backup re-merges the same agency events, opens the same conflict again and
    /// so writes the notification under the id the agency's inbox already holds: the inbox skips
    /// it and reconcile finds it centrally (docs/deploy.md, "After a restore").
    /// One conflict of a kind per set of applications: a `submitted` event is merged once, and
    /// only a submission opens a `duplicate_application`, so the name is never reused.
    static func conflictOpenedEventID(kind: ConflictKind, notified: UUID, between applications: [UUID]) -> UUID {
        let names = applications.map(\.lowercased).sorted().joined(separator: ",")
        return UUID(v3: "conflict_opened/\(kind.rawValue)/\(notified.lowercased)/\(names)")
    }

    // MARK: Bookkeeping

    private mutating func setOutcome(_ ledgerID: Int64, _ outcome: EventOutcome) {
        if let index = newEventIndex[ledgerID] {
            effects.newEvents[index].outcome = outcome
        } else {
            effects.outcomeChanges[ledgerID] = outcome
        }
    }

    private mutating func replaceData(of ledgerID: Int64, with data: JSONValue) {
        if let index = newEventIndex[ledgerID] { effects.newEvents[index].event.data = data }
    }
}

extension UUID {
    /// The lower-case text form the ledger and the queues use.
    public var lowercased: String { uuidString.lowercased() }
}
