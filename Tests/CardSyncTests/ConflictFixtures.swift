import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// Helpers for the conflict scenarios: a fresh migrated central database and agency queues per
// test, outbox lines written the way counter software writes them, and short ways to look at
// what the centre and the inboxes hold afterwards.

/// A fresh, migrated central database and a private directory of agency queues.
final class ConflictWorld: @unchecked Sendable {
    // @unchecked: used from one test at a time.
    let uri: String
    let db: Connection
    /// The second connection a sync writes the projection on, as `cardsync sync` does.
    let projection: Connection
    let directory: TemporaryDirectory
    private var lastSeq: [String: Int64] = [:]

    init() throws {
        uri = try TestDatabase.freshDatabase()
        db = try Connection(conninfo: uri)
        _ = try Migrator(connection: db, logger: .test).migrate()
        projection = try Connection(conninfo: uri)
        directory = try TemporaryDirectory(prefix: "cardsync-conflicts")
    }

    /// A queue for a new agency `code`.
    func queue(_ code: String) throws -> QueueDirectory {
        try QueueDirectory.initialize(at: directory.url.appendingPathComponent(code, isDirectory: true),
                                      agency: Agency(code: code, name: "社保卡服务网点 \(code)", district: "芙蓉区"))
    }

    /// Appends one outbox line with the queue's next seq, as counter software does.
    @discardableResult
    func record(_ queue: QueueDirectory, _ type: String, app: UUID, at occurredAt: String, data: JSONValue,
                eventID: UUID = UUID()) throws -> UUID {
        let seq = (lastSeq[queue.path] ?? 0) + 1
        lastSeq[queue.path] = seq
        let line: JSONValue = [
            "seq": .int(seq), "event_id": .string(eventID.lowercased), "application_id": .string(app.lowercased),
            "type": .string(type), "occurred_at": .string(occurredAt), "data": data,
        ]
        let handle = try FileHandle(forWritingTo: queue.outboxFile)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(JSONWriter.bytes(line) + [0x0A]))
        try handle.close()
        return eventID
    }

    /// One sync of the queue; `horizon` is the pending horizon in seconds.
    @discardableResult
    func sync(_ queue: QueueDirectory, horizon: Int64? = nil) throws -> AgencySyncResult {
        var options = SyncOptions()
        if let horizon { options.pendingHorizonSeconds = horizon }
        return try AgencySync(queue: queue, connection: db, projection: projection, options: options, logger: .test).run()
    }

    /// A bureau decision, recorded centrally.
    @discardableResult
    func bureau(_ type: EventType, _ app: UUID, _ data: JSONValue = [:]) throws -> String {
        try BureauRecorder(connection: db, logger: .test).record(type, applications: [app], data: { _ in data })[0].outcome
    }

    func inbox(_ queue: QueueDirectory) throws -> [InboxLine] {
        try InboxReader.readAll(from: queue.inboxFile)
    }

    /// The inbox lines of one type.
    func inbox(_ queue: QueueDirectory, _ type: EventType) throws -> [InboxLine] {
        try inbox(queue).filter { $0.type == type }
    }

    func status(_ app: UUID) throws -> String {
        try db.query("SELECT status FROM cardsync.applications WHERE application_id = $1", [.uuid(app)])[0]
            .decode(String.self, column: "status")
    }

    func formValue(_ app: UUID, _ path: String) throws -> JSONValue? {
        let text = try db.query("SELECT form::text AS form FROM cardsync.applications WHERE application_id = $1", [.uuid(app)])[0]
            .decode(String.self, column: "form")
        return try JSONParser.parse(text).value(atPath: path)
    }

    func ledgerOutcome(eventID: UUID) throws -> String {
        try db.query("SELECT outcome FROM cardsync.ledger WHERE event_id = $1", [.uuid(eventID)])[0]
            .decode(String.self, column: "outcome")
    }

    func count(_ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
        Int(try db.query(sql, parameters)[0].decode(Int64.self, at: 0))
    }

    func conflicts(_ filter: ConflictFilter = ConflictFilter(status: .all)) throws -> [ConflictRecord] {
        try ConflictReview(connection: db).list(filter)
    }

    /// The only conflict of a kind.
    func conflict(_ kind: ConflictKind) throws -> ConflictRecord {
        let found = try conflicts(ConflictFilter(status: .all, kind: kind))
        #expect(found.count == 1, "expected one \(kind.rawValue) conflict, found \(found.count)")
        return try #require(found.first)
    }

    func resolve(_ id: Int64, _ decision: ConflictDecision, by: String = "reviewer.li", note: String? = nil) throws -> ConflictResolution {
        try ConflictResolver(connection: db, logger: .test).resolve(id, decision: decision, by: by, note: note)
    }

    /// The error a resolution fails with (recording an issue when it succeeds).
    func refusal(_ id: Int64, _ decision: ConflictDecision, by: String = "reviewer.li") -> ConflictError? {
        do {
            _ = try resolve(id, decision, by: by)
            Issue.record("conflict \(id) was resolved with \(decision.flag), expected a refusal")
            return nil
        } catch let error as ConflictError {
            return error
        } catch {
            Issue.record("unexpected error: \(error)")
            return nil
        }
    }

    /// Runs `cardsync conflicts ARGUMENTS --database URI` (the real executable).
    func cli(_ arguments: [String]) throws -> CardsyncCLI.Output {
        try CardsyncCLI.run(["conflicts"] + arguments + ["--database", uri], scratch: directory.url)
    }

    /// `db verify`: the projection equals the fold of the ledger.
    func expectProjectionIsAFoldOfTheLedger(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try ProjectionVerifier(connection: db).verify()
        #expect(report.isClean, "\(report.text)", sourceLocation: sourceLocation)
    }
}

/// Valid event data and instants.
enum ConflictFixture {
    static let agencyA = "CS-FR-001"
    static let agencyB = "CS-YL-002"
    static let agencyC = "CS-KF-003"

    static let child = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2019, month: 3, day: 15)!, sequence: 1)
    static let otherChild = IdentityNumber.make(regionCode: "430104", birthDate: CivilDate(year: 2020, month: 6, day: 2)!, sequence: 22)
    static let guardian = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 1988, month: 1, day: 1)!, sequence: 11)
    static let phone = "13812345678"
    static let otherPhone = "15973100022"

    /// An instant `hours` before now, written in +08:00 as agencies write them.
    static func ago(hours: Double) -> String {
        let micros = Timestamp.now.microseconds - Int64(hours * 3_600_000_000)
        return Timestamp(microseconds: micros, offsetSeconds: 8 * 3600).rfc3339
    }

    static func submitted(child: IdentityNumber = child, phone: String = phone, name: String = "王小明") -> JSONValue {
        let birth = child.birthDate.description
        return [
            "channel": "counter",
            "child": ["name": .string(name), "id_number": .string(child.text), "birth_date": .string(birth),
                      "sex": .string(child.sex == .male ? "M" : "F")],
            "guardian": ["name": "王建国", "id_number": .string(guardian.text), "relationship": "father",
                         "phone": .string(phone)],
            "household": ["register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"],
            "documents": ["birth_certificate", "household_register", "guardian_id", "photo"],
        ]
    }

    static func amended(base: Int64, _ changes: [String: JSONValue]) -> JSONValue {
        ["base_version": .int(base), "changes": .object(changes)]
    }

    static func cardIssued(_ number: String) -> JSONValue {
        ["card_number": .string(number), "collected_by": ["name": "王建国", "relationship": "father"]]
    }
}
