import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// Helpers for the sync integration tests (SyncTests, SyncCrashTests, SyncConcurrencyTests):
// one fresh central database and one private temporary directory per test, valid events with
// valid identity numbers, queues, runs of AgencySync and of the real `cardsync` executable, and
// canonical snapshots of the central state and the sync-owned files to compare runs with.

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
        connection = try DatabaseSelection(flag: uri).connect(migrate: true)
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
    func connect() throws -> Connection { try DatabaseSelection(flag: uri).connect(migrate: false) }

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
        return try AgencySync(queue: queue, connection: try connect(), projection: try connect(), options: options).run()
    }

    // MARK: Central counts and queries

    func count(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int {
        let rows = try db.query(sql, parameters)
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    /// The first column of every row, as text.
    func texts(_ sql: String, _ parameters: [PostgresValue] = []) throws -> [String] {
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
        let report = try BureauRecorder(connection: try db).importFile(url)
        #expect(report.refused.isEmpty, "refused bureau lines: \(report.refused.map { "\($0.line): \($0.code)" })",
                sourceLocation: sourceLocation)
        return report
    }
}

// MARK: - Valid events

enum SyncFixture {
    static let agency = Agency(code: "CS-FR-001", name: "芙蓉区社保卡服务网点", district: "芙蓉区", channel: .counter)
    static let region = "430102"
    static let shanghai: Int32 = 8 * 3600

    /// A valid child identity number, different for every `n` in 0..<250_000 (born in 2019-2020).
    static func childID(_ n: Int) -> IdentityNumber {
        let birth = CivilDate(dayNumber: CivilDate(year: 2019, month: 3, day: 15)!.dayNumber + n / 500)
        return IdentityNumber.make(regionCode: region, birthDate: birth, sequence: n % 500 * 2 + 1)
    }

    static let guardianID = IdentityNumber.make(regionCode: region, birthDate: CivilDate(year: 1988, month: 1, day: 1)!,
                                                sequence: 11)

    /// `data` of a valid `submitted` event for the child `childID(n)`.
    static func submittedData(child n: Int, channel: String = "counter") -> JSONValue {
        let child = childID(n)
        return [
            "channel": .string(channel),
            "child": ["name": .string("王小明\(n)"), "id_number": .string(child.text),
                      "birth_date": .string(child.birthDate.description), "sex": .string(child.sex == .male ? "M" : "F")],
            "guardian": ["name": "王建国", "id_number": .string(guardianID.text), "relationship": "father",
                         "phone": "13812345678"],
            "household": ["register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"],
            "documents": ["birth_certificate", "household_register", "guardian_id", "photo"],
        ]
    }

    /// A line object without `seq`.
    static func event(_ type: String, app: UUID, at: Timestamp, data: JSONValue, eventID: UUID = UUID()) -> JSONValue {
        [
            "event_id": .string(eventID.lowercased), "application_id": .string(app.lowercased), "type": .string(type),
            "occurred_at": .string(at.rfc3339), "data": data,
        ]
    }

    /// An instant `minutes` after a base two days before now, written in +08:00.
    static func at(minutes: Int) -> Timestamp {
        let base = (Timestamp.now.microseconds / 60_000_000 - 2 * 24 * 60) * 60_000_000
        return Timestamp(microseconds: base + Int64(minutes) * 60_000_000, offsetSeconds: shanghai)
    }

    /// A bureau decision line (the outbox shape without `seq`), for a `bureau import` file.
    static func decision(_ type: EventType, app: UUID, at: Timestamp, data: JSONValue = [:], eventID: UUID = UUID()) -> JSONValue {
        event(type.rawValue, app: app, at: at, data: data, eventID: eventID)
    }

    /// Writes JSON lines to a file (each with `\n`).
    static func writeLines(_ values: [JSONValue], to url: URL) throws {
        var bytes: [UInt8] = []
        for value in values { bytes += JSONWriter.bytes(value) + [0x0A] }
        try Data(bytes).write(to: url)
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

// MARK: - The real executable

/// Runs the `cardsync` executable that `swift build`/`swift test` put next to the test bundle.
enum CardsyncCLI {
    struct Output {
        var status: Int32
        /// Killed by a signal (SIGKILL in the crash tests).
        var signaled: Bool
        var stdout: String
        var stderr: String
    }

    /// `.build*/<triple>/debug/cardsync`, found from the test process's own path.
    static let executable: URL? = {
        let fm = FileManager.default
        if let given = ProcessInfo.processInfo.environment["CARDSYNC_EXECUTABLE"], fm.isExecutableFile(atPath: given) {
            return URL(fileURLWithPath: given)
        }
        var starts: [URL] = []
        if let first = CommandLine.arguments.first {
            starts.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        starts.append(Bundle.main.bundleURL.resolvingSymlinksInPath())
        if let exe = Bundle.main.executableURL { starts.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for start in starts {
            var dir = start
            for _ in 0..<3 {
                let candidate = dir.appendingPathComponent("cardsync")
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                   fm.isExecutableFile(atPath: candidate.path) {
                    return candidate
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }()

    struct NotBuilt: Error, CustomStringConvertible {
        var description: String {
            "the cardsync executable was not found next to the test bundle (\(CommandLine.arguments.first ?? "?")); build it with swift build, or set CARDSYNC_EXECUTABLE"
        }
    }

    /// A started process whose output goes to files in `scratch`.
    final class Running: @unchecked Sendable {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL

        /// `environment` is added to the test process's own (e.g. `CARDSYNC_CRASH_AT`).
        init(_ arguments: [String], scratch: URL, environment extra: [String: String] = [:]) throws {
            guard let executable = CardsyncCLI.executable else { throw NotBuilt() }
            let id = UUID().uuidString
            stdoutURL = scratch.appendingPathComponent("cli-\(id).out")
            stderrURL = scratch.appendingPathComponent("cli-\(id).err")
            FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
            FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
            process = Process()
            process.executableURL = executable
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["CARDSYNC_DATABASE_URL"] = nil
            environment["CARDSYNC_HOME"] = scratch.appendingPathComponent("home").path
            environment["CARDSYNC_LOG_LEVEL"] = nil
            for (key, value) in extra { environment[key] = value }
            process.environment = environment
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
            process.standardError = try FileHandle(forWritingTo: stderrURL)
            try process.run()
        }

        func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

        func wait() -> Output {
            process.waitUntilExit()
            return Output(status: process.terminationStatus,
                          signaled: process.terminationReason == .uncaughtSignal,
                          stdout: String(decoding: QueueFiles.bytes(stdoutURL), as: UTF8.self),
                          stderr: String(decoding: QueueFiles.bytes(stderrURL), as: UTF8.self))
        }
    }

    static func start(_ arguments: [String], scratch: URL, environment: [String: String] = [:]) throws -> Running {
        try Running(arguments, scratch: scratch, environment: environment)
    }

    static func run(_ arguments: [String], scratch: URL, environment: [String: String] = [:]) throws -> Output {
        try start(arguments, scratch: scratch, environment: environment).wait()
    }

    /// One agency's generated queue (faulty lines included) and the bureau's decisions for it,
    /// under `directory`: the workload of the kill tests.
    static func generateOneQueue(in directory: URL, seed: String) throws -> (queue: QueueDirectory, decisions: URL) {
        let generated = directory.appendingPathComponent("generated")
        let generate = try run(["generate", generated.path, "--agencies", "1", "--applications", "110",
                                "--months", "2", "--seed", seed, "--faults", "0.04", "--end", today], scratch: directory)
        guard generate.status == 0 else { throw SyncError("cardsync generate failed: \(generate.stderr)") }
        // `generate` writes the queues into their own folder, the decisions beside it.
        guard let queue = try Drill.queues(under: generated).first else { throw SyncError("no queue was generated") }
        return (QueueDirectory(queue), try Drill.decisionsFile(under: generated))
    }

    /// Today's date in UTC as YYYY-MM-DD: a `generate --end` whose events all lie in the past.
    static var today: String {
        let now = Timestamp.now.civilDate(offsetSeconds: 0)
        return String(format: "%04d-%02d-%02d", now.year, now.month, now.day)
    }
}

extension JSONValue {
    /// The keys of an object, sorted.
    var keys: [String] { (objectValue ?? [:]).keys.sorted() }
}
