import CardCore
import Foundation

/// The part of the central state the fold reads and changes: applications, the open
/// applications of each child, and the events held for a prerequisite.
///
/// The merge loads only what one batch touches; `db verify` starts empty and folds the whole
/// ledger. Either way the fold code is the same.
public struct LifecycleStore: Sendable {
    public private(set) var applications: [UUID: ApplicationState] = [:]
    /// Open applications (on hold included) by child identity number.
    public private(set) var openByChild: [String: [UUID]] = [:]
    /// Applications whose card was issued, by child identity number: a child who holds a card
    /// gets no second one through a new submission (the duplicate rule).
    public private(set) var issuedByChild: [String: [UUID]] = [:]
    /// Events waiting for a prerequisite, per application, in ledger order.
    public var pending: [UUID: [LedgerEvent]] = [:]

    public init() {}

    public subscript(id: UUID) -> ApplicationState? { applications[id] }

    /// Adds or replaces an application, keeping the child index in step.
    public mutating func put(_ app: ApplicationState) {
        let before = applications[app.applicationID]
        applications[app.applicationID] = app
        let wasOpen = before?.status.isOpen ?? false
        if wasOpen && !app.status.isOpen {
            openByChild[app.childIDNumber]?.removeAll { $0 == app.applicationID }
            if openByChild[app.childIDNumber]?.isEmpty == true { openByChild[app.childIDNumber] = nil }
        } else if !wasOpen && app.status.isOpen {
            openByChild[app.childIDNumber, default: []].append(app.applicationID)
        }
        let wasIssued = before?.status == .issued
        if !wasIssued && app.status == .issued {
            issuedByChild[app.childIDNumber, default: []].append(app.applicationID)
        } else if wasIssued && app.status != .issued {
            issuedByChild[app.childIDNumber]?.removeAll { $0 == app.applicationID }
            if issuedByChild[app.childIDNumber]?.isEmpty == true { issuedByChild[app.childIDNumber] = nil }
        }
    }

    /// The child's applications whose card was issued, oldest first.
    public func issuedApplications(ofChild child: String) -> [ApplicationState] {
        (issuedByChild[child] ?? []).compactMap { applications[$0] }
            .sorted { ($0.submittedAt, $0.applicationID.uuidString) < ($1.submittedAt, $1.applicationID.uuidString) }
    }

    /// Open applications of a child, on hold included, oldest first (stable order for the rules).
    public func openApplications(ofChild child: String) -> [ApplicationState] {
        (openByChild[child] ?? []).compactMap { applications[$0] }
            .sorted { ($0.submittedAt, $0.owningAgency, $0.applicationID.uuidString)
                < ($1.submittedAt, $1.owningAgency, $1.applicationID.uuidString) }
    }

    /// Holds an event until its prerequisite arrives.
    public mutating func hold(_ event: LedgerEvent) {
        var list = pending[event.applicationID, default: []]
        if let index = list.firstIndex(where: { $0.ledgerID > event.ledgerID }) {
            list.insert(event, at: index)
        } else {
            list.append(event)
        }
        pending[event.applicationID] = list
    }
}
