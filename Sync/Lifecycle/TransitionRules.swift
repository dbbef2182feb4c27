import CardCore

/// Whether an event can apply to an application in its current state
/// (../shared/spec/lifecycle.md, "Statuses" and "Out-of-order arrival is normal").
public enum TransitionVerdict: Sendable, Equatable {
    /// Apply it now.
    case apply
    /// Its prerequisite has not arrived yet (named): hold it as pending.
    case wait(String)
    /// It can never apply (the reason, for the `invalid_transition` conflict).
    case never(String)
}

/// The transition table, one function so that every rule is in one place.
public enum TransitionRules {
    /// Decides what to do with `event` given the application's state.
    /// `submitted` and conflict events are handled by the engine, not here.
    public static func verdict(for event: LedgerEvent, on app: ApplicationState) -> TransitionVerdict {
        let status = app.status
        if event.type == .cardDispatched, status == .issued, app.dispatchedTo == nil,
           let target = event.data["agency_code"]?.stringValue, target == app.issuedBy {
            // The counter issued the card before the bureau's dispatch record arrived: a late
            // record that agrees with what happened, not a contradiction. It is recorded (the
            // status stays issued) instead of raising a conflict nobody could act on.
            return .apply
        }
        if status.isTerminal && event.type != .conflictResolved {
            return .never("the application is already \(status.rawValue)")
        }
        switch event.type {
        case .submitted:
            return .never("the application was already submitted")
        case .amended:
            switch status {
            case .submitted, .returned, .onHold:
                return .apply
            case .approved, .produced, .dispatched:
                let paths = Set(event.data["changes"]?.objectValue?.keys.map { $0 } ?? [])
                return paths.isSubset(of: AmendablePath.changeableAfterApproval)
                    ? .apply
                    : .never("only guardian.phone may be amended once the application is \(status.rawValue)")
            default:
                return .never("cannot amend an application that is \(status.rawValue)")
            }
        case .documentsVerified, .withdrawn:
            return .apply
        case .cardIssued:
            switch status {
            case .produced, .dispatched:
                let number = event.data["card_number"]?.stringValue
                if number != app.cardNumber {
                    return .never("card number \(number ?? "(none)") is not the produced card \(app.cardNumber ?? "(none)")")
                }
                if status == .dispatched, let target = app.dispatchedTo, event.agencyCode != target {
                    return .never("the card was dispatched to \(target); only that agency can issue it")
                }
                return .apply
            default:
                return .wait("card_produced")
            }
        case .approved:
            return bureauDecision(status, appliesIn: [.submitted], waitsIn: [.returned, .onHold])
        case .rejected:
            return bureauDecision(status, appliesIn: [.submitted, .returned], waitsIn: [.onHold])
        case .returned:
            return bureauDecision(status, appliesIn: [.submitted], waitsIn: [.onHold])
        case .cardProduced:
            return bureauDecision(status, appliesIn: [.approved], waitsIn: [.submitted, .returned, .onHold])
        case .cardDispatched:
            return bureauDecision(status, appliesIn: [.produced],
                                  waitsIn: [.submitted, .returned, .onHold, .approved])
        case .conflictOpened, .conflictResolved:
            return .apply
        }
    }

    /// The status an application has after an event of `type` applied to it in `status`: the one
    /// table that the centre's fold (`LifecycleEngine`, once `verdict` says apply) and an agency's
    /// local view (`LocalQueueView`, which has no verdicts) both read.
    ///
    /// - `status`: nil when the application is not known (locally: a decision for an
    ///   application this queue never recorded); only `submitted` makes one known.
    /// - `reported`: the status a conflict event names (its inbox line's `status`). The centre
    ///   passes none: a `conflict_resolved`'s effect is its `action`, which the engine applies.
    public static func status(after type: EventType, from status: ApplicationStatus?,
                              reported: ApplicationStatus? = nil) -> ApplicationStatus? {
        guard let status else { return type == .submitted ? .submitted : nil }
        switch type {
        case .submitted, .documentsVerified: return status
        case .amended: return status == .returned ? .submitted : status
        case .withdrawn: return status.isOpen ? .withdrawn : status
        case .cardIssued: return .issued
        case .approved: return .approved
        case .rejected: return .rejected
        case .returned: return .returned
        case .cardProduced: return .produced
        // A counter that issued the card before the dispatch record arrived keeps it issued.
        case .cardDispatched: return status == .issued ? .issued : .dispatched
        case .conflictOpened, .conflictResolved: return reported ?? status
        }
    }

    /// A bureau decision applies in some statuses, waits in earlier ones (the application has not
    /// got there yet, or is on hold), and can never apply once the application is past it.
    private static func bureauDecision(_ status: ApplicationStatus, appliesIn: Set<ApplicationStatus>,
                                       waitsIn: Set<ApplicationStatus>) -> TransitionVerdict {
        if appliesIn.contains(status) { return .apply }
        if waitsIn.contains(status) {
            return .wait(status == .onHold ? "conflict_resolution" : "status " + appliesIn.map(\.rawValue).sorted().joined(separator: "|"))
        }
        return .never("the application is already \(status.rawValue)")
    }
}
