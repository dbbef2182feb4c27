import CardCore
import CardDatabase
import EventFixtures
import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// "The projection must always equal a fold of the ledger" (../shared/spec/lifecycle.md), also
/// after a server crash right after a sync, and after a sync that stopped between its ledger's
/// and its projection's commits: reports, conflicts and bureau commands read the projection.
@Suite("Projection durability")
struct ProjectionDurabilityTests {
    /// A queue of `applications` submissions (each verified once), in one agency.
    static func fillQueue(_ world: SyncWorld, applications: Int) throws -> QueueDirectory {
        let queue = try world.queue()
        let script = OutboxScript(queue)
        for _ in 0..<applications {
            let app = try script.submit()
            try script.verify(app)
        }
        return queue
    }

    @Test("a sync that said it is done survives a server crash right after it: the projection's last commit is durable")
    func projectionCommitSurvivesAnImmediateServerStop() throws {
        // A private cluster with the durable settings of the embedded default (the shared test
        // cluster runs without fsync and with asynchronous commits, which a crash would defeat).
        let home = try TemporaryDirectory(prefix: "cs-crash")
        // The WAL writer flushes asynchronous commits at most every 10 s here (a busy server's
        // worst case): a commit that does not wait for its WAL is then really lost at the crash.
        let cluster = try LocalCluster(directory: home.url.appendingPathComponent("pg"),
                                       options: .init(durability: .durable, serverSettings: ["wal_writer_delay": "10s"]))
        defer { try? cluster.removeAll() }
        try cluster.start()
        let admin = try Connection(conninfo: cluster.connectionURI())
        try admin.executeScript("CREATE DATABASE crashdb")
        let uri = cluster.connectionURI(database: "crashdb")
        _ = try Migrator(connection: try Connection(conninfo: uri), logger: .test).migrate()

        let directory = try TemporaryDirectory(prefix: "cs-crash-q")
        let queue = try QueueDirectory.initialize(at: directory.url.appendingPathComponent("q"), agency: SyncFixture.agency)
        let script = OutboxScript(queue)
        for _ in 0..<400 { try script.submit() }
        var options = SyncOptions()
        options.batchSize = 100
        // Several rounds: each ends with a crash right after the sync returned.
        for round in 0..<3 {
            if round > 0 { for _ in 0..<400 { try script.submit() } }
            let result = try AgencySync(queue: queue, connection: try Connection(conninfo: uri),
                                        projection: try Connection(conninfo: uri), options: options, logger: .test).run()
            #expect(result.pushed == 400)
            try cluster.crash()
            try cluster.start()
            let conn = try Connection(conninfo: uri)
            let watermark = try ProjectionWatermark.read(on: conn)
            #expect(watermark.isCurrent, "round \(round): projection through \(watermark.through), ledger \(watermark.last)")
            let report = try ProjectionVerifier(connection: conn).verify()
            #expect(report.isClean, "round \(round): \(report.text)")
            let apps = Int(try conn.query("SELECT count(*) FROM cardsync.applications")[0].decode(Int64.self, at: 0))
            #expect(apps == 400 * (round + 1))
        }
    }

    /// Leaves the central state as a sync that died between its two commits leaves it: the
    /// ledger holds the last batch, the projection and its watermark do not.
    static func dropLastProjectionBatch(_ world: SyncWorld, events: Int) throws {
        let db = try world.db
        let last = try ProjectionWatermark.read(on: db).last
        let through = last - Int64(events)
        try db.execute("DELETE FROM cardsync.applications WHERE last_ledger_id > $1", [.int64(through)])
        try db.execute("UPDATE cardsync.projection_state SET through_ledger_id = $1", [.int64(through)])
        #expect(try !ProjectionWatermark.read(on: db).isCurrent)
    }

    @Test("a sync with nothing new rebuilds a projection left behind the ledger before it says it is done")
    func syncWithNothingNewRepairsAStaleProjection() throws {
        let world = try SyncWorld()
        let queue = try Self.fillQueue(world, applications: 30)
        try world.sync(queue)
        try Self.dropLastProjectionBatch(world, events: 10)

        let again = try world.sync(queue)
        #expect(again.pushed == 0)
        #expect(try ProjectionWatermark.read(on: try world.db).isCurrent)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications") == 30)
        try world.expectVerifyClean()
    }

    @Test("reports and conflict lists rebuild a projection left behind the ledger before they read it")
    func readersRepairAStaleProjection() throws {
        let world = try SyncWorld()
        let queue = try Self.fillQueue(world, applications: 20)
        try world.sync(queue)
        let month = String(SyncFixture.at(minutes: 0).rfc3339.prefix(7))

        try Self.dropLastProjectionBatch(world, events: 8)
        let report = try CardsyncCLI.run(["report", "monthly", "--month", month, "--format", "json", "--database", world.uri],
                                         scratch: world.directory.url)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(try ProjectionWatermark.read(on: try world.db).isCurrent)
        #expect(try world.count("SELECT count(*) FROM cardsync.applications") == 20)
        // The figures were read after the repair: all 20 applications are counted as received.
        let doc = try JSONParser.parse(report.stdout)
        let received = (doc["agencies"]?.arrayValue ?? []).compactMap { $0["received"]?.intValue }.reduce(0, +)
        #expect(received == 20, "\(report.stdout.prefix(400))")

        try Self.dropLastProjectionBatch(world, events: 8)
        let list = try CardsyncCLI.run(["conflicts", "list", "--database", world.uri], scratch: world.directory.url)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(try ProjectionWatermark.read(on: try world.db).isCurrent)
        try world.expectVerifyClean()
    }

    @Test("an unknown status in the projection fails the merge loudly instead of folding it as submitted")
    func unknownProjectionStatusFailsLoudly() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let script = OutboxScript(queue)
        let app = try script.submit()
        try world.sync(queue)
        let db = try world.db
        // Only a newer cardsync or a hand edit can write such a status: the check is dropped here.
        try db.executeScript("ALTER TABLE cardsync.applications DROP CONSTRAINT applications_status_check")
        try db.execute("UPDATE cardsync.applications SET status = 'archived' WHERE application_id = $1", [.uuid(app)])
        try script.verify(app)
        #expect {
            try world.sync(queue)
        } throws: { error in
            "\(error)".contains("archived") && "\(error)".contains("does not know")
        }
        // Nothing was applied: the verification is not in the ledger.
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE type = 'documents_verified'") == 0)
    }
}
