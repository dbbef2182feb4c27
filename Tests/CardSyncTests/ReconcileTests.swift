import CardBench
import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
import Workload
@testable import CardSync

// lifecycle.md, "Divergence": reconcile compares what an agency holds (outbox and inbox) with
// what the centre holds for it, by digests; --repair pushes and pulls; a second run finds nothing.

@Suite("Reconcile digests")
struct ReconcileDigestTests {
    @Test("MD5 gives the RFC 1321 test-suite digests")
    func md5Vectors() {
        func hex(_ s: String) -> String { MD5.digest(Array(s.utf8)).map { String(format: "%02x", $0) }.joined() }
        #expect(hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex("a") == "0cc175b9c0f1b6a831c399e269772661")
        #expect(hex("abc") == "900150983cd24fb0d6963f7d28e17f72")
        #expect(hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0")
        #expect(hex("abcdefghijklmnopqrstuvwxyz") == "c3fcd3d76192e4007dfb496cca67e13b")
        #expect(hex(String(repeating: "1234567890", count: 8)) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    @Test("the agency computes the same bucket and hash of an event id as the centre's SQL")
    func bucketAndHashAgreeWithSQL() throws {
        let connection = try TestDatabase.connect()
        let ids = (0..<200).map { _ in UUID() } + [UUID(uuidString: "00000000-0000-0000-0000-000000000000")!,
                                                  UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")!]
        for bucketCount in [1, 256, 1024] {
            let rows = try connection.query("""
                SELECT id, (('x' || substr(m, 1, 8))::bit(32)::int & $2::int) AS bucket,
                       ('x' || substr(m, 9, 16))::bit(64)::bigint AS hash
                FROM (SELECT id, md5(uuid_send(id)) AS m FROM unnest($1::uuid[]) AS id) s
                """, [.uuidArray(ids), .int64(Int64(bucketCount - 1))])
            #expect(rows.count == ids.count)
            for row in rows {
                let key = EventIDKey(try row.decode(UUID.self, column: "id"), bucketCount: bucketCount)
                #expect(key.bucket == (try row.decode(Int.self, column: "bucket")))
                #expect(key.hash == (try row.decode(Int64.self, column: "hash")))
            }
        }
    }

    @Test("the one-block MD5 of an event id's 16 bytes equals the general MD5")
    func uuidPrefixMatchesMD5() {
        for _ in 0..<500 {
            let id = UUID()
            let u = id.uuid
            let digest = MD5.digest([u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
            let (first, next) = MD5.uuidPrefix(u)
            #expect(first == digest[0..<4].reduce(0) { $0 << 8 | UInt32($1) })
            #expect(next == digest[4..<12].reduce(0) { $0 << 8 | UInt64($1) })
        }
    }

    @Test("inbox entries as sync writes them are read without the full parser, with the same fields")
    func inboxFastPath() {
        let line = InboxLine(ledgerID: 88213, eventID: UUID(), applicationID: UUID(), type: .cardDispatched,
                             occurredAt: Timestamp(rfc3339: "2026-10-03T09:15:27+08:00")!,
                             data: ["agency_code": "CS-FR-001"])
        let bytes = Array(line.lineBytes().dropLast())
        let fast = LocalHoldings.fastInboxFields(bytes)
        #expect(fast?.0 == line.eventID)
        #expect(fast?.1.ledgerID == 88213 && fast?.1.applicationID == line.applicationID && fast?.1.type == .cardDispatched)
        // Any other spelling falls back to the full parser.
        #expect(LocalHoldings.fastInboxFields(Array(#"{"event_id":"x","ledger_id":1}"#.utf8)) == nil)
    }

    @Test("digests differ exactly in the buckets where the sets differ; duplicates count once")
    func differingBuckets() {
        var a = KeyedIDSet<Int>(bucketCount: 64)
        var b = KeyedIDSet<Int>(bucketCount: 64)
        let ids = (0..<500).map { _ in UUID() }
        for (i, id) in ids.enumerated() {
            a.insert(id, info: i)
            a.insert(id, info: i)
            if i != 17 { b.insert(id, info: i) }
        }
        #expect(a.count == 500)
        let differing = a.digest.differingBuckets(b.digest)
        #expect(differing == [EventIDKey(ids[17], bucketCount: 64).bucket])
        b.insert(ids[17], info: 17)
        #expect(a.digest == b.digest)
    }
}

/// A generated workload split in two halves (outbox lines and bureau decisions), to sync in two
/// phases; one copy of its queues per scenario.
final class ReconcileFixture {
    let scratch: TemporaryDirectory
    let workload: URL
    let codes: [String]
    let bureauFirstHalf: URL
    let bureauSecondHalf: URL
    let bureauAll: URL

    init(applications: Int = 120, seed: UInt64 = 11) throws {
        scratch = try TemporaryDirectory(prefix: "cardsync-reconcile")
        workload = scratch.url.appendingPathComponent("workload")
        let spec = WorkloadSpec(agencies: 3, applications: applications, months: 3, seed: seed, faultRate: 0.02,
                                end: CivilDate(year: 2025, month: 7, day: 1)!)
        let summary = try WorkloadGenerator.generate(spec: spec, into: workload)
        codes = summary.agencies.map(\.agency.code)
        bureauAll = workload.appendingPathComponent("bureau-decisions.jsonl")
        let lines = try Self.lines(bureauAll)
        bureauFirstHalf = scratch.url.appendingPathComponent("bureau-1.jsonl")
        bureauSecondHalf = scratch.url.appendingPathComponent("bureau-2.jsonl")
        try Data(lines[..<(lines.count / 2)].joined()).write(to: bureauFirstHalf)
        try Data(lines[(lines.count / 2)...].joined()).write(to: bureauSecondHalf)
    }

    /// Lines of a file, each with its `\n`.
    static func lines(_ url: URL) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in try Data(contentsOf: url) {
            current.append(byte)
            if byte == 0x0A { out.append(current); current = [] }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// A copy of the queues under `name`, with only the first half of each outbox; returns the
    /// queues and, per queue, the outbox lines held back for the second phase.
    func copy(_ name: String) throws -> (queues: [QueueDirectory], held: [[UInt8]]) {
        var queues: [QueueDirectory] = []
        var held: [[UInt8]] = []
        for code in codes {
            let dir = scratch.url.appendingPathComponent(name).appendingPathComponent(code)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let source = workload.appendingPathComponent(code)
            try FileManager.default.copyItem(at: source.appendingPathComponent("agency.json"),
                                             to: dir.appendingPathComponent("agency.json"))
            let lines = try Self.lines(source.appendingPathComponent("outbox.jsonl"))
            try Data(lines[..<(lines.count / 2)].joined()).write(to: dir.appendingPathComponent("outbox.jsonl"))
            held.append(Array(lines[(lines.count / 2)...].joined()))
            queues.append(QueueDirectory(dir))
        }
        return (queues, held)
    }

    static func append(_ bytes: [UInt8], to queue: QueueDirectory) throws {
        let handle = try FileHandle(forWritingTo: queue.outboxFile)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    static func sync(_ queues: [QueueDirectory], _ connection: Connection) throws -> [AgencySyncResult] {
        try queues.map { try AgencySync(queue: $0, connection: connection, logger: .test).run() }
    }

    static func reconcile(_ queues: [QueueDirectory], _ connection: Connection, repair: Bool = false,
                          bucketCount: Int = 1024) throws -> [AgencyReconcileResult] {
        var options = ReconcileOptions()
        options.repair = repair
        options.bucketCount = bucketCount
        return try queues.map { try AgencyReconcile(queue: $0, connection: connection, options: options, logger: .test).run() }
    }

    /// Phase 1: the first halves synced, the first half of the bureau's decisions imported and pulled.
    static func phase1(_ queues: [QueueDirectory], bureau: URL, _ connection: Connection) throws {
        _ = try Migrator(connection: connection, logger: .test).migrate()
        _ = try sync(queues, connection)
        _ = try BureauRecorder(connection: connection, logger: .test).importFile(bureau)
        _ = try sync(queues, connection)
    }

    /// Phase 2: the held-back outbox lines appended and synced, then the rest of the bureau's
    /// decisions imported and pulled.
    static func phase2(_ queues: [QueueDirectory], held: [[UInt8]], bureau: URL, _ connection: Connection) throws {
        for (queue, bytes) in zip(queues, held) { try append(bytes, to: queue) }
        _ = try sync(queues, connection)
        _ = try BureauRecorder(connection: connection, logger: .test).importFile(bureau)
        _ = try sync(queues, connection)
    }

    /// Agency and bureau event ids of the ledger (conflict events are the system's own).
    static func ledgerEventIDs(_ connection: Connection) throws -> Set<UUID> {
        Set(try connection.query("SELECT event_id FROM cardsync.ledger WHERE origin <> 'system'")
            .map { try $0.decode(UUID.self, column: "event_id") })
    }

    /// Per agency, the ids of the events the ledger holds for it.
    static func agencyEventIDs(_ codes: [String], _ connection: Connection) throws -> [Set<UUID>] {
        try codes.map { code in
            Set(try connection.query("SELECT event_id FROM cardsync.ledger WHERE agency_code = $1", [.text(code)])
                .map { try $0.decode(UUID.self, column: "event_id") })
        }
    }

    /// Every application as one comparable line.
    static func applications(_ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT application_id::text || ' ' || owning_agency || ' ' || status || ' v' || version
                   || ' ' || coalesce(card_number, '-') || ' ' || coalesce(held_status, '-') || ' ' || form::text AS line
            FROM cardsync.applications ORDER BY application_id
            """).map { try $0.decode(String.self, column: "line") }
    }

    static func inbox(_ queue: QueueDirectory) throws -> [InboxLine] {
        try InboxReader.readAll(from: queue.inboxFile)
    }

    /// The database name in a test URI `postgresql:///NAME?...`.
    static func databaseName(_ uri: String) -> String {
        let afterSlashes = uri.components(separatedBy: "///")[1]
        return String(afterSlashes.prefix { $0 != "?" })
    }

    /// Runs admin SQL on the cluster's `postgres` database, retrying while sessions just closed
    /// still linger on the database being copied.
    static func admin(_ sql: String) throws {
        let admin = try Connection(conninfo: try TestDatabase.cluster().connectionURI(database: "postgres"))
        var attempt = 0
        while true {
            do {
                try admin.executeScript(sql)
                return
            } catch let error as PostgresError where attempt < 50 && "\(error)".contains("being accessed by other users") {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }
}

@Suite("Reconcile", .serialized)
struct ReconcileTests {
    @Test("an agency that agrees with the centre: nothing reported, only digests exchanged")
    func agreeingAgencyReportsNothing() throws {
        let fixture = try ReconcileFixture()
        let (queues, held) = try fixture.copy("agree")
        let connection = try TestDatabase.connect()
        try ReconcileFixture.phase1(queues, bureau: fixture.bureauFirstHalf, connection)
        try ReconcileFixture.phase2(queues, held: held, bureau: fixture.bureauSecondHalf, connection)

        let results = try ReconcileFixture.reconcile(queues, connection)
        for r in results {
            #expect(r.isConsistent, "\(r.agencyCode): \(r.json())")
            #expect(r.differingBuckets == 0)
            #expect(r.eventsNotYetSynced == 0 && r.decisionsNotYetPulled == 0)
            #expect(r.agencyEvents == r.centralEvents)
            #expect(r.agencyDecisions == r.centralDecisions)
            #expect(r.bytesReceived < 200, "two totals, no buckets")
        }
        #expect(results.contains { $0.agencyDecisions > 0 })
        let bench = try ReconcileBenchmark.run(queues: queues, connection: connection, repetitions: 2, logger: .test)
        #expect(bench.consistent && bench.runs.count == 2 && bench.agencyEvents == results.reduce(0) { $0 + $1.agencyEvents })
        #expect(bench.bytesReceived < 1024)
        // --repair on agreeing queues changes nothing.
        let inboxBefore = try queues.map { try Data(contentsOf: $0.inboxFile) }
        let repaired = try ReconcileFixture.reconcile(queues, connection, repair: true)
        #expect(repaired.allSatisfy { $0.isConsistent && ($0.pushed?.accepted ?? 0) == 0 && $0.pulled == 0 })
        #expect(try queues.map { try Data(contentsOf: $0.inboxFile) } == inboxBefore)
    }

    @Test("a queue never synced has nothing to reconcile")
    func neverSynced() throws {
        let fixture = try ReconcileFixture(applications: 10)
        let (queues, _) = try fixture.copy("fresh")
        let connection = try TestDatabase.connect()
        _ = try Migrator(connection: connection, logger: .test).migrate()
        let results = try ReconcileFixture.reconcile(queues, connection)
        #expect(results.allSatisfy { $0.neverSynced })
    }

    @Test("after the centre is restored from an older backup: lost events reported and pushed again, lost decisions reported, nothing lost after --repair and sync")
    func centralRestore() throws {
        let fixture = try ReconcileFixture()

        // The uninterrupted run.
        let (reference, referenceHeld) = try fixture.copy("reference")
        let referenceDB = try Connection(conninfo: try TestDatabase.freshDatabase())
        try ReconcileFixture.phase1(reference, bureau: fixture.bureauFirstHalf, referenceDB)
        try ReconcileFixture.phase2(reference, held: referenceHeld, bureau: fixture.bureauSecondHalf, referenceDB)

        // The same, with a backup taken between the phases and restored after them.
        let (queues, held) = try fixture.copy("restored")
        let uri = try TestDatabase.freshDatabase()
        let name = ReconcileFixture.databaseName(uri)
        let backup = name + "_backup"
        try ReconcileFixture.phase1(queues, bureau: fixture.bureauFirstHalf, try Connection(conninfo: uri))
        try ReconcileFixture.admin("CREATE DATABASE \(backup) TEMPLATE \(name)")
        let beforeRestore = try {
            let c = try Connection(conninfo: uri)
            try ReconcileFixture.phase2(queues, held: held, bureau: fixture.bureauSecondHalf, c)
            return try ReconcileFixture.agencyEventIDs(fixture.codes, c)
        }()
        try ReconcileFixture.admin("DROP DATABASE \(name) WITH (FORCE)")
        try ReconcileFixture.admin("CREATE DATABASE \(name) TEMPLATE \(backup)")
        let connection = try Connection(conninfo: uri)

        // Found: the second phase's events and the decisions pulled after the backup.
        let found = try ReconcileFixture.reconcile(queues, connection)
        let afterRestore = try ReconcileFixture.agencyEventIDs(fixture.codes, connection)
        for ((r, before), after) in zip(zip(found, beforeRestore), afterRestore) {
            let lost = before.subtracting(after)
            #expect(!lost.isEmpty)
            #expect(Set(r.eventsMissingCentrally.map(\.eventID)) == lost, "\(r.agencyCode)")
            #expect(r.decisionsMissingAtAgency.isEmpty)
            #expect(r.eventsOnlyCentral.isEmpty)
            #expect(r.eventsNotYetSynced == 0)
        }
        #expect(found.contains { !$0.decisionsUnknownCentrally.isEmpty })
        #expect(found.allSatisfy { !$0.isConsistent })
        // Report only: nothing changed.
        #expect(try ReconcileFixture.reconcile(queues, connection).map(\.eventsMissingCentrally.count)
            == found.map(\.eventsMissingCentrally.count))

        // Repair pushes the lost events; the bureau records its lost decisions again; sync.
        let repaired = try ReconcileFixture.reconcile(queues, connection, repair: true)
        for (r, f) in zip(repaired, found) {
            #expect(r.pushed?.accepted == f.eventsMissingCentrally.count)
        }
        _ = try BureauRecorder(connection: connection, logger: .test).importFile(fixture.bureauSecondHalf)
        let synced = try ReconcileFixture.sync(queues, connection)
        #expect(synced.allSatisfy { $0.pushed == 0 && $0.repushedAfterRestore == 0 })

        // Nothing lost: the same ledger events and applications as the uninterrupted run.
        #expect(try ReconcileFixture.ledgerEventIDs(connection) == (try ReconcileFixture.ledgerEventIDs(referenceDB)))
        #expect(try ReconcileFixture.applications(connection) == (try ReconcileFixture.applications(referenceDB)))
        for (queue, ref) in zip(queues, reference) {
            let inbox = try ReconcileFixture.inbox(queue).filter { $0.type.origin != .system }
            let expected = try ReconcileFixture.inbox(ref).filter { $0.type.origin != .system }
            #expect(inbox.count == Set(inbox.map(\.eventID)).count, "no decision twice in \(queue.path)")
            #expect(Set(inbox.map(\.eventID)) == Set(expected.map(\.eventID)))
        }

        let again = try ReconcileFixture.reconcile(queues, connection)
        #expect(again.allSatisfy { $0.isConsistent }, "\(again.map { $0.json() })")
        #expect(try ProjectionVerifier(connection: connection).verify().isClean)
    }

    @Test("inbox lines lost at the agency: reported, pulled again once, and later syncs append nothing twice")
    func inboxMissingLines() throws {
        let fixture = try ReconcileFixture()
        let (queues, held) = try fixture.copy("inbox")
        let connection = try TestDatabase.connect()
        try ReconcileFixture.phase1(queues, bureau: fixture.bureauFirstHalf, connection)
        try ReconcileFixture.phase2(queues, held: held, bureau: fixture.bureauSecondHalf, connection)

        // Delete every third inbox line of each agency.
        var deleted: [Set<UUID>] = []
        for queue in queues {
            let lines = try ReconcileFixture.lines(queue.inboxFile)
            var kept: [UInt8] = []
            var gone: Set<UUID> = []
            for (i, line) in lines.enumerated() {
                if i % 3 == 1, case .success(let entry) = InboxLine.parse(Array(line.dropLast())) {
                    gone.insert(entry.eventID)
                } else {
                    kept += line
                }
            }
            try Data(kept).write(to: queue.inboxFile)
            deleted.append(gone)
        }
        #expect(deleted.contains { !$0.isEmpty })

        let found = try ReconcileFixture.reconcile(queues, connection)
        for (r, gone) in zip(found, deleted) {
            #expect(Set(r.decisionsMissingAtAgency.map(\.eventID)) == gone, "\(r.agencyCode)")
            #expect(r.decisionsUnknownCentrally.isEmpty && r.eventsMissingCentrally.isEmpty)
        }

        let repaired = try ReconcileFixture.reconcile(queues, connection, repair: true)
        #expect(zip(repaired, deleted).allSatisfy { $0.pulled == $1.count })
        #expect(try ReconcileFixture.reconcile(queues, connection).allSatisfy { $0.isConsistent })
        for queue in queues {
            let ids = try ReconcileFixture.inbox(queue).map(\.eventID)
            #expect(ids.count == Set(ids).count)
        }

        // A later sync pulls nothing again; a new decision is pulled exactly once.
        #expect(try ReconcileFixture.sync(queues, connection).allSatisfy { $0.pulled == 0 })
        let app = try connection.query("""
            SELECT application_id, owning_agency FROM cardsync.applications WHERE status = 'submitted' ORDER BY application_id LIMIT 1
            """).first
        if let app {
            let id = try app.decode(UUID.self, column: "application_id")
            _ = try BureauRecorder(connection: connection, logger: .test).record(.approved, applications: [id], data: { _ in [:] })
            let owner = try app.decode(String.self, column: "owning_agency")
            let results = try ReconcileFixture.sync(queues, connection)
            for (queue, r) in zip(queues, results) {
                #expect(r.pulled == (queue.url.lastPathComponent == owner ? 1 : 0))
                let ids = try ReconcileFixture.inbox(queue).map(\.eventID)
                #expect(ids.count == Set(ids).count)
            }
        }
        #expect(try ReconcileFixture.reconcile(queues, connection).allSatisfy { $0.isConsistent })
        #expect(try ProjectionVerifier(connection: connection).verify().isClean)
    }
}
