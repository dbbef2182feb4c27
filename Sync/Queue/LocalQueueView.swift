import CardCore
import Foundation

/// `cardsync queue status`: what an agency sees locally, without the central database.
/// An application's status is the fold of its outbox and inbox events in time order through the
/// centre's own transition table (`TransitionRules.status(after:from:reported:)`); the inbox's
/// conflict events carry the status the centre gave the application.
public struct LocalQueueView: Sendable {
    public var agency: Agency
    /// Applications taken at this agency, by current local status.
    public var byStatus: [ApplicationStatus: Int] = [:]
    /// Outbox lines not yet processed by a sync (complete lines only).
    public var unsyncedLines = 0
    /// A final line without a newline (an append in progress or torn by a crash).
    public var hasIncompleteLine = false
    public var quarantinedLines = 0
    public var inboxLines = 0
    /// Cards dispatched to this agency and not yet handed over.
    public var cardsToHandOver = 0
    public var lastSync: Timestamp?

    public static func load(_ queue: QueueDirectory) throws -> LocalQueueView {
        var view = LocalQueueView(agency: try queue.readAgency())
        let checkpoint = try queue.loadCheckpoint() ?? .initial
        view.lastSync = checkpoint.updatedAt

        struct Step { var at: Int64; var order: Int; var app: UUID; var apply: (inout ApplicationStatus?) -> Void }
        var steps: [Step] = []
        var dispatchedHere: Set<UUID> = []
        var issuedHere: Set<UUID> = []

        // Lines sync quarantined never reached the centre: they count as quarantined, not as
        // applications (a well-formed `submitted` with a bad identity number, say).
        var quarantined: Set<Int> = []
        if FileManager.default.fileExists(atPath: queue.quarantineFile.path) {
            let entries = try QuarantineEntry.readAll(from: queue.quarantineFile)
            view.quarantinedLines = entries.count
            quarantined = Set(entries.map(\.lineNumber))
        }

        let outbox = try OutboxReader(url: queue.outboxFile)
        defer { outbox.close() }
        while true {
            let lines = try outbox.nextBatch(maxLines: 50_000)
            if lines.isEmpty { break }
            for line in lines {
                if line.endOffset > checkpoint.outboxOffset { view.unsyncedLines += 1 }
                if quarantined.contains(line.lineNumber) { continue }
                // Lines not synced yet are read leniently: one that does not parse is not counted.
                guard let json = try? JSONParser.parse(line.bytes), let type = json["type"]?.stringValue.flatMap(EventType.init),
                      let app = json["application_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
                      let at = json["occurred_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
                else { continue }
                if type == .cardIssued { issuedHere.insert(app) }
                steps.append(Step(at: at.microseconds, order: 0, app: app) { status in
                    status = TransitionRules.status(after: type, from: status)
                })
            }
        }
        view.hasIncompleteLine = (try? FileManager.default.attributesOfItem(atPath: queue.outboxFile.path)[.size] as? Int64)
            .map { $0 > outbox.offset } ?? false

        if FileManager.default.fileExists(atPath: queue.inboxFile.path) {
            for entry in try InboxReader.readAll(from: queue.inboxFile) {
                view.inboxLines += 1
                if entry.type == .cardDispatched, entry.data["agency_code"]?.stringValue == view.agency.code {
                    dispatchedHere.insert(entry.applicationID)
                }
                let type = entry.type
                let explicit = entry.data["status"]?.stringValue.flatMap(ApplicationStatus.init(rawValue:))
                steps.append(Step(at: entry.occurredAt.microseconds, order: 1, app: entry.applicationID) { status in
                    // A decision for an application this queue never recorded stays unknown (nil).
                    status = TransitionRules.status(after: type, from: status, reported: explicit)
                })
            }
        }
        var statuses: [UUID: ApplicationStatus?] = [:]
        for step in steps.sorted(by: { ($0.at, $0.order) < ($1.at, $1.order) }) {
            var status = statuses[step.app] ?? nil
            step.apply(&status)
            statuses[step.app] = status
        }
        for case let status? in statuses.values { view.byStatus[status, default: 0] += 1 }
        view.cardsToHandOver = dispatchedHere.subtracting(issuedHere).count
        return view
    }

    public var json: JSONValue {
        var counts: [String: JSONValue] = [:]
        for status in ApplicationStatus.allCases { counts[status.rawValue] = .int(Int64(byStatus[status] ?? 0)) }
        return [
            "agency_code": .string(agency.code), "agency_name": .string(agency.name),
            "applications_by_status": .object(counts),
            "unsynced_events": .int(Int64(unsyncedLines)), "incomplete_final_line": .bool(hasIncompleteLine),
            "quarantined_lines": .int(Int64(quarantinedLines)), "inbox_lines": .int(Int64(inboxLines)),
            "cards_to_hand_over": .int(Int64(cardsToHandOver)),
            "last_sync": lastSync.map { .string($0.rfc3339) } ?? .null,
        ]
    }
}
