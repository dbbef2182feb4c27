import CardCore
import CardDatabase
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// Helpers for the sync integration tests (SyncTests, SyncCrashTests, SyncConcurrencyTests):
// one fresh central database and one private temporary directory per test, outboxes written
// line by line, and the sync-owned files. Valid events come from EventFixtures (SyncFixture);
// the real `cardsync` executable is run by CardsyncCLI.swift; canonical snapshots of the
// central state are in CentralSnapshot.swift.

// MARK: - A test's world

/// A fresh, migrated central database and a private temporary directory.
final class SyncWorld: @unchecked Sendable {
    // @unchecked: used from one test at a time; `connection` is only touched by that test.
    let uri: String
    let directory: TemporaryDirectory
    private var connection: Connection?

    init() throws {
        uri = try TestDatabase.freshDatabase()
        directory = try TemporaryDirectory(prefix: "cardsync-sync")
        connection = try DatabaseSelection(flag: uri).connect(logger: .test, migrate: true)
    }

    /// The test's own connection (reopened after `disconnect()`).
    var db: Connection {
        get throws {
            if let connection, connection.isHealthy { return connection }
            let fresh = try connect()
            connection = fresh
            return fresh
        }
    }

    /// Closes the test's own connection (a database cannot be used as a template while connected).
    func disconnect() { connection = nil }

    /// A new connection to the world's database, as `cardsync sync` makes one.
    func connect() throws -> Connection { try DatabaseSelection(flag: uri).connect(logger: .test, migrate: false) }

    /// The database's name, from the URI `postgresql:///NAME?...`.
    var databaseName: String {
        let afterScheme = uri.dropFirst("postgresql:///".count)
        return String(afterScheme.prefix { $0 != "?" })
    }

    /// `URL` of a path inside the world's directory.
    func path(_ name: String) -> URL { directory.url.appendingPathComponent(name, isDirectory: true) }

    /// A new queue directory for `agency` (created with `queue init`'s own code).
    func queue(_ agency: Agency = SyncFixture.agency, in name: String? = nil) throws -> QueueDirectory {
        try QueueDirectory.initialize(at: path(name ?? agency.code), agency: agency)
    }

    /// One `AgencySync.run()` on connections of its own (the second for the projection's
    /// writes), as the command does it.
    @discardableResult
    func sync(_ queue: QueueDirectory, batchSize: Int = 20_000, lockWait: Duration? = nil) throws -> AgencySyncResult {
        var options = SyncOptions()
        options.batchSize = batchSize
        options.lockWait = lockWait
        return try AgencySync(queue: queue, connection: try connect(), projection: try connect(), options: options, logger: .test).run()
    }

    // MARK: Central counts and queries

    func count(_ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
        let rows = try db.query(sql, parameters)
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    /// The first column of every row, as text.
    func texts(_ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> [String] {
        try db.query(sql, parameters).map { try $0.decode(String?.self, at: 0) ?? "NULL" }
    }

    var ledgerCount: Int { get throws { try count("SELECT count(*) FROM cardsync.ledger") } }

    /// `db verify`: the projection must equal a fold of the ledger.
    func expectVerifyClean(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try ProjectionVerifier(connection: try db).verify()
        #expect(report.isClean, "db verify: \(report.text)", sourceLocation: sourceLocation)
        #expect(report.eventsReplayed == (try ledgerCount), sourceLocation: sourceLocation)
    }

    /// Everything the centre holds, in a form that does not depend on id numbering.
    func snapshot() throws -> CentralSnapshot {
        try CentralSnapshot(self)
    }

    /// Registers an agency centrally (needed before a bureau `card_dispatched` names it).
    func register(_ agency: Agency) throws {
        try AgencyRegistry(connection: try db).add(agency)
    }

    /// Imports a bureau JSON-lines file; fails the test on refused lines.
    @discardableResult
    func importBureau(_ url: URL, sourceLocation: SourceLocation = #_sourceLocation) throws -> BureauRecorder.ImportReport {
        let report = try BureauRecorder(connection: try db, logger: .test).importFile(url)
        #expect(report.refused.isEmpty, "refused bureau lines: \(report.refused.map { "\($0.line): \($0.code)" })",
                sourceLocation: sourceLocation)
        return report
    }
}

/// Appends events to one agency's outbox, assigning `seq` and `occurred_at` in order, the way
/// counter software does (whole lines, O_APPEND).
final class OutboxScript {
    let queue: QueueDirectory
    private(set) var lastSeq: Int64 = 0
    private(set) var minute = 0
    private(set) var nextChild: Int
    /// Every line written, by 1-based line number.
    private(set) var lines: [[UInt8]] = []

    init(_ queue: QueueDirectory, firstChild: Int = 0) {
        self.queue = queue
        self.nextChild = firstChild
    }

    /// Appends a valid event with the next `seq`; returns its event id.
    @discardableResult
    func append(_ type: String, app: UUID, data: JSONValue, at: Timestamp? = nil, eventID: UUID = UUID()) throws -> UUID {
        minute += 1
        lastSeq += 1
        let value = SyncFixture.event(type, app: app, at: at ?? SyncFixture.at(minutes: minute), data: data, eventID: eventID)
            .setting("seq", to: .int(lastSeq))
        try appendRaw(JSONWriter.bytes(value))
        return eventID
    }

    /// A new application for a new child; returns its application id.
    @discardableResult
    func submit(child: Int? = nil, app: UUID = UUID(), at: Timestamp? = nil) throws -> UUID {
        let n = child ?? { defer { nextChild += 1 }; return nextChild }()
        try append("submitted", app: app, data: SyncFixture.submittedData(child: n), at: at)
        return app
    }

    func verify(_ app: UUID) throws {
        try append("documents_verified", app: app, data: ["documents": ["birth_certificate", "household_register"]])
    }

    func amend(_ app: UUID, baseVersion: Int64, phone: String) throws {
        try append("amended", app: app, data: ["base_version": .int(baseVersion), "changes": ["guardian.phone": .string(phone)]])
    }

    func withdraw(_ app: UUID) throws {
        try append("withdrawn", app: app, data: ["reason": "家长撤回申请"])
    }

    func issue(_ app: UUID, card: String, at: Timestamp? = nil) throws {
        try append("card_issued", app: app, data: ["card_number": .string(card),
                                                   "collected_by": ["name": "李梅", "relationship": "mother"]], at: at)
    }

    /// Appends raw bytes as one line (`newline: false` leaves it torn, as a crashed append does).
    func appendRaw(_ bytes: [UInt8], newline: Bool = true) throws {
        let handle = try FileHandle(forWritingTo: queue.outboxFile)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes + (newline ? [0x0A] : [])))
        if newline { lines.append(bytes) }
    }

    /// Makes `seq` continue after a line written by hand.
    func skipSeq(to seq: Int64) { lastSeq = max(lastSeq, seq) }
}

// MARK: - The sync-owned files

enum QueueFiles {
    static func bytes(_ url: URL) -> [UInt8] { (try? Array(Data(contentsOf: url))) ?? [] }

    static func inbox(_ queue: QueueDirectory) throws -> [InboxLine] { try InboxReader.readAll(from: queue.inboxFile) }

    static func quarantine(_ queue: QueueDirectory) throws -> [QuarantineEntry] {
        try QuarantineEntry.readAll(from: queue.quarantineFile)
    }

    /// Copies a queue directory (outbox, and whatever sync-owned files it has) to `destination`.
    static func copy(_ queue: QueueDirectory, to destination: URL) throws -> QueueDirectory {
        try FileManager.default.copyItem(at: queue.url, to: destination)
        return QueueDirectory(destination)
    }

    /// An inbox line without the parts that depend on id numbering: the ledger id, and for
    /// system events their random event id and the conflict id.
    static func normalized(_ line: InboxLine) -> String {
        if line.type.origin == .system {
            var data = line.data.objectValue ?? [:]
            data["conflict_id"] = nil
            return "\(line.applicationID.lowercased) \(line.type.rawValue) \(JSONWriter.string(.object(data)))"
        }
        return "\(line.eventID.lowercased) \(line.applicationID.lowercased) \(line.type.rawValue) \(line.occurredAt.rfc3339) \(JSONWriter.string(line.data))"
    }

    /// The inbox holds each delivered event once: no ledger id and no event id twice.
    static func expectNoDuplicates(_ lines: [InboxLine], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Set(lines.map(\.ledgerID)).count == lines.count, "an inbox ledger_id appears twice", sourceLocation: sourceLocation)
        #expect(Set(lines.map(\.eventID)).count == lines.count, "an inbox event_id appears twice", sourceLocation: sourceLocation)
    }

    /// Quarantine entries as `line error raw`, sorted by line; each line number must appear once.
    static func quarantineSummary(_ queue: QueueDirectory, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let entries = try quarantine(queue)
        #expect(Set(entries.map(\.lineNumber)).count == entries.count, "a quarantined line appears twice",
                sourceLocation: sourceLocation)
        return entries.sorted { $0.lineNumber < $1.lineNumber }
            .map { "\($0.lineNumber) \($0.error) \(Data($0.raw).base64EncodedString())" }
    }
}

extension JSONValue {
    /// The keys of an object, sorted.
    var keys: [String] { (objectValue ?? [:]).keys.sorted() }
}
