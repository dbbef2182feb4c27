import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// Shared by ServerCrashTests and ConnectionCutTests: a queue whose content is known exactly, the
// checks every fault test ends with, and the shape of a failed run's output.

/// An agency queue whose content the fault tests know line by line: submissions, each followed by
/// its verification, and a malformed line every few lines. After any fault and the runs that
/// follow, "every valid event is in the ledger exactly once, every invalid line quarantined" is
/// then an exact comparison, not a count against a reference run.
final class FaultQueue {
    let queue: QueueDirectory
    let agency: Agency
    private let script: OutboxScript
    private(set) var eventIDs: [UUID] = []
    /// 1-based outbox line numbers of the malformed lines.
    private(set) var invalidLines: [Int] = []
    private(set) var applications = 0
    private(set) var lineCount = 0

    init(at url: URL, agency: Agency) throws {
        self.agency = agency
        queue = try QueueDirectory.initialize(at: url, agency: agency)
        script = OutboxScript(queue)
    }

    /// Appends `count` applications (two valid lines each) and, after every `invalidEvery`
    /// applications, a line that is not JSON.
    func add(applications count: Int, invalidEvery: Int = 9) throws {
        for _ in 0..<count {
            let app = UUID()
            eventIDs.append(try script.append("submitted", app: app, data: SyncFixture.submittedData(child: applications)))
            eventIDs.append(try script.append("documents_verified", app: app,
                                              data: ["documents": ["birth_certificate", "household_register"]]))
            applications += 1
            lineCount += 2
            if applications % invalidEvery == 0 {
                try script.appendRaw(Array("{\"type\": \"submitted\", \"data\": {".utf8))
                lineCount += 1
                invalidLines.append(lineCount)
            }
        }
    }

    var outboxLines: Int { lineCount }

    /// The end state of every fault test, checked on the owner's connection: each valid event in
    /// the ledger exactly once, each malformed line quarantined once, the whole outbox behind the
    /// checkpoint, nothing left staged, and `db verify` clean (the projection is the ledger's fold).
    func expectSettled(on db: Connection, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ids = try db.query("""
            SELECT event_id::text FROM cardsync.ledger WHERE agency_code = $1 AND origin = 'agency'
            """, [.text(agency.code)]).map { try $0.decode(String.self, at: 0) }
        #expect(ids.count == eventIDs.count, "ledger holds \(ids.count) of \(eventIDs.count) events", sourceLocation: sourceLocation)
        #expect(Set(ids) == Set(eventIDs.map(\.lowercased)), "the ledger's events are the queue's valid events",
                sourceLocation: sourceLocation)
        func count(_ sql: PostgresQuery) throws -> Int { Int(try db.query(sql)[0].decode(Int64.self, at: 0)) }
        #expect(try count("SELECT count(*) FROM cardsync.applications") == applications, sourceLocation: sourceLocation)
        #expect(try count("SELECT count(*) FROM cardsync.staged_lines") == 0, "no staged line left", sourceLocation: sourceLocation)
        #expect(try count("SELECT count(*) FROM cardsync.staged_batches WHERE merged_at IS NULL") == 0, sourceLocation: sourceLocation)
        #expect(try count("SELECT count(*) FROM cardsync.refused_lines") == 0, sourceLocation: sourceLocation)

        let quarantined = try QueueFiles.quarantineSummary(queue, sourceLocation: sourceLocation)
        #expect(quarantined.map { Int($0.prefix { $0 != " " }) ?? -1 } == invalidLines,
                "each malformed line quarantined once", sourceLocation: sourceLocation)
        #expect(try queue.loadCheckpoint()?.outboxLine == lineCount, "the checkpoint is past the whole outbox",
                sourceLocation: sourceLocation)

        let report = try ProjectionVerifier(connection: db).verify()
        #expect(report.isClean, "db verify: \(report.text)", sourceLocation: sourceLocation)
        #expect(report.eventsReplayed == (try count("SELECT count(*) FROM cardsync.ledger")), sourceLocation: sourceLocation)
    }
}

extension CardsyncCLI.Output {
    /// A run that could not finish its work: exit status 1 with a message, never a signal.
    var failedCleanly: Bool { !signaled && status == 1 && stderr.contains("Error") }
    var succeeded: Bool { !signaled && status == 0 }

    /// Whether stderr says the connection to the database was lost (libpq's words, or ours).
    var namesLostConnection: Bool {
        let text = stderr.lowercased()
        return text.contains("connection") && (text.contains("lost") || text.contains("closed") || text.contains("terminated"))
    }

    var summary: String { "status \(status)\(signaled ? " (signal)" : ""), stderr: \(stderr.suffix(1500))" }
}
