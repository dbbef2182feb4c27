import CardCore

/// The `concurrent_amendment` rule: an amendment based on an older version that changes a field
/// another event changed since is merged per field, the later `occurred_at` winning; the losing
/// values are kept in a conflict, resolved automatically and listed for review.
enum AmendmentMerge {
    static func apply(_ event: LedgerEvent, to app: inout ApplicationState, conflicts: inout [ConflictDraft]) {
        let base = Int(event.data["base_version"]?.intValue ?? Int64(app.version))
        let changes = event.data["changes"]?.objectValue ?? [:]
        let newVersion = app.version + 1
        let stamp = FieldStamp(version: newVersion, occurredAt: event.occurredAt.microseconds, ledgerID: event.ledgerID)
        var contested: [JSONValue] = []
        var rivalLedgerIDs: [Int64] = []
        for path in changes.keys.sorted() {
            let value = changes[path]!
            let last = app.fieldStamps[path]
                ?? FieldStamp(version: 1, occurredAt: app.submittedAt.microseconds, ledgerID: 0)
            let changedSinceBase = base < app.version && last.version > base
            guard changedSinceBase else {
                app.setFormValue(value, at: path)
                app.fieldStamps[path] = stamp
                continue
            }
            let current = app.formValue(at: path) ?? .null
            let incomingWins = event.occurredAt.microseconds > last.occurredAt
            if incomingWins {
                app.setFormValue(value, at: path)
                app.fieldStamps[path] = stamp
            }
            if last.ledgerID != 0 { rivalLedgerIDs.append(last.ledgerID) }
            contested.append([
                "path": .string(path),
                "applied_value": incomingWins ? value : current,
                "losing_value": incomingWins ? current : value,
                "winner": incomingWins ? "this_event" : "earlier_change",
                "earlier_change_ledger_id": .int(last.ledgerID),
            ])
        }
        // An amendment answers a return: the application (or the status it is held in) goes
        // back to submitted, by the same table as every other status change.
        app.status = TransitionRules.status(after: .amended, from: app.status) ?? app.status
        if app.status == .onHold { app.heldStatus = TransitionRules.status(after: .amended, from: app.heldStatus) }
        guard !contested.isEmpty else { return }
        conflicts.append(ConflictDraft(
            kind: .concurrentAmendment, isOpen: false, outcome: .autoMerged,
            applicationIDs: [app.applicationID],
            agencyCodes: [event.agencyCode ?? app.owningAgency, app.owningAgency],
            eventIDs: [event.eventID], ledgerIDs: [event.ledgerID] + Array(Set(rivalLedgerIDs)).sorted(),
            detail: [
                "base_version": .int(Int64(base)),
                "version_at_arrival": .int(Int64(app.version)),
                "fields": .array(contested),
                "losing_changes": .object(Dictionary(uniqueKeysWithValues: contested.compactMap { field in
                    guard let path = field["path"]?.stringValue, let losing = field["losing_value"] else { return nil }
                    return (path, losing)
                })),
            ]))
    }
}
