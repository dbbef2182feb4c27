import CardCore
import Foundation

/// What `cardsync reconcile` found for one agency queue and what it repaired.
public struct AgencyReconcileResult: Sendable {
    /// An outbox event, by id, seq and line.
    public struct OutboxEventRef: Sendable, Equatable {
        public var eventID: UUID
        public var seq: Int64
        public var line: Int
    }

    /// A decision (bureau decision or conflict event) meant for the agency's inbox.
    public struct DecisionRef: Sendable, Equatable {
        public var eventID: UUID
        public var applicationID: UUID?
        public var type: String?
        /// The central delivery id (decisions the centre holds) or nil.
        public var deliveryID: Int64?
        /// The ledger id the inbox line carries (decisions the inbox holds) or nil.
        public var ledgerID: Int64?
    }

    public var agencyCode: String
    /// The queue has no state.json: it was never synced, so there is nothing to reconcile yet.
    public var neverSynced = false

    // MARK: Found

    /// Valid outbox events, already synced by the checkpoint, that the ledger lacks.
    public var eventsMissingCentrally: [OutboxEventRef] = []
    /// Events the ledger holds for this agency that its outbox does not (the outbox lost lines).
    /// Reported only: the outbox belongs to the counter software.
    public var eventsOnlyCentral: [UUID] = []
    /// Decisions delivered to this agency centrally that its inbox lacks.
    public var decisionsMissingAtAgency: [DecisionRef] = []
    /// Inbox decisions the centre has not delivered to this agency (it lost them, for example
    /// restored from an older backup). Reported only: the bureau records decisions, not sync.
    public var decisionsUnknownCentrally: [DecisionRef] = []

    // MARK: Not divergence

    /// Valid outbox lines after the checkpoint, not in the ledger yet: the next sync pushes them.
    public var eventsNotYetSynced = 0
    /// Valid outbox events whose event_id the ledger holds for other content (an
    /// `event_id_reuse` conflict recorded when they were synced): never pushed again.
    public var eventsRecordedAsReuse: [OutboxEventRef] = []
    /// Decisions delivered after the last pull, while both sides agree on the pull cursor: the
    /// next sync pulls them (and so does `--repair`).
    public var decisionsNotYetPulled = 0

    // MARK: Repaired

    /// `--repair`: the push of the missing events.
    public var pushed: MergeResult?
    /// `--repair`: decisions appended to the inbox.
    public var pulled = 0

    // MARK: Cost

    /// Events and decisions compared on each side.
    public var agencyEvents = 0
    public var centralEvents = 0
    public var agencyDecisions = 0
    public var centralDecisions = 0
    public var bucketCount = 0
    /// Buckets whose digests differed (events plus decisions), whose ids were exchanged.
    public var differingBuckets = 0
    /// Bytes of result rows received from the centre (digests plus ids of differing buckets),
    /// counted as they travel in the text protocol (values plus per-row and per-field headers).
    public var bytesReceived = 0
    public var seconds = 0.0

    public init(agencyCode: String) { self.agencyCode = agencyCode }

    /// Nothing diverges (what is merely not synced yet, and recorded conflicts, do not count).
    public var isConsistent: Bool {
        eventsMissingCentrally.isEmpty && eventsOnlyCentral.isEmpty && decisionsMissingAtAgency.isEmpty
            && decisionsUnknownCentrally.isEmpty
    }

    /// The `reconcile --json` row; id lists are capped at `listLimit` entries each.
    public func json(listLimit: Int = 100) -> JSONValue {
        func ids<T>(_ items: [T], _ f: (T) -> JSONValue) -> JSONValue { .array(items.prefix(listLimit).map(f)) }
        func event(_ r: OutboxEventRef) -> JSONValue {
            ["event_id": .string(r.eventID.lowercased), "seq": .int(r.seq), "line": .int(Int64(r.line))]
        }
        func decision(_ r: DecisionRef) -> JSONValue {
            var o: [String: JSONValue] = ["event_id": .string(r.eventID.lowercased)]
            if let a = r.applicationID { o["application_id"] = .string(a.lowercased) }
            if let t = r.type { o["type"] = .string(t) }
            if let d = r.deliveryID { o["delivery_id"] = .int(d) }
            if let l = r.ledgerID { o["ledger_id"] = .int(l) }
            return .object(o)
        }
        var found: [String: JSONValue] = [
            "events_missing_centrally": .int(Int64(eventsMissingCentrally.count)),
            "events_only_central": .int(Int64(eventsOnlyCentral.count)),
            "decisions_missing_at_agency": .int(Int64(decisionsMissingAtAgency.count)),
            "decisions_unknown_centrally": .int(Int64(decisionsUnknownCentrally.count)),
            "events_not_yet_synced": .int(Int64(eventsNotYetSynced)),
            "events_recorded_as_reuse": .int(Int64(eventsRecordedAsReuse.count)),
            "decisions_not_yet_pulled": .int(Int64(decisionsNotYetPulled)),
        ]
        found["lists"] = [
            "events_missing_centrally": ids(eventsMissingCentrally, event),
            "events_only_central": ids(eventsOnlyCentral) { .string($0.lowercased) },
            "decisions_missing_at_agency": ids(decisionsMissingAtAgency, decision),
            "decisions_unknown_centrally": ids(decisionsUnknownCentrally, decision),
            "events_recorded_as_reuse": ids(eventsRecordedAsReuse, event),
        ]
        var repaired: JSONValue = .null
        if let pushed {
            repaired = [
                "pushed": .int(Int64(pushed.accepted)), "already_present": .int(Int64(pushed.alreadyPresent)),
                "pending": .int(Int64(pushed.pending)), "conflicts_opened": .int(Int64(pushed.conflictsOpened)),
                "pulled": .int(Int64(pulled)),
            ]
        }
        return [
            "agency_code": .string(agencyCode),
            "consistent": .bool(isConsistent),
            "never_synced": .bool(neverSynced),
            "found": .object(found),
            "repaired": repaired,
            "compared": [
                "agency_events": .int(Int64(agencyEvents)), "central_events": .int(Int64(centralEvents)),
                "agency_decisions": .int(Int64(agencyDecisions)), "central_decisions": .int(Int64(centralDecisions)),
                "buckets": .int(Int64(bucketCount)), "differing_buckets": .int(Int64(differingBuckets)),
                "bytes_received": .int(Int64(bytesReceived)),
            ],
            "seconds": .double((seconds * 1000).rounded() / 1000),
        ]
    }
}
