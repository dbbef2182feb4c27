import CardCore
import CardDatabase
import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// For ServerCrashTests: a private durable cluster (the shared test cluster runs without fsync
// and other tests use it, so it is never crashed), a fresh database with the agency's and the
// bureau's roles per test, and a gate that holds a server process at a chosen point until the
// test crashes the server.

/// The crash tests' own cluster, started once per test process and deleted at its exit.
final class CrashCluster: Sendable {
    static let shared = Result { try CrashCluster() }
    let cluster: LocalCluster

    private init() throws {
        // Named like the shared test cluster's directories (`cardsync-test-<pid>-<n>`): should
        // this process die before its atexit handler, the next test process removes it.
        let directory = URL(fileURLWithPath: "/tmp/cardsync-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // Commits wait for their WAL (synchronous_commit on, as in the embedded default), and the
        // WAL writer writes asynchronous commits only every 10 s, so a commit that does not wait
        // is really lost at the crash (ProjectionDurabilityTests' setting). fsync is off: a process
        // crash (`pg_ctl -m immediate`) loses nothing the kernel holds, and the machine's disk is
        // shared with other tests.
        cluster = try LocalCluster(directory: directory, options: .init(
            durability: .durable, serverSettings: ["wal_writer_delay": "10s", "fsync": "off"]))
        atexit { if case .success(let crash) = CrashCluster.shared { try? crash.cluster.removeAll() } }
        try cluster.start()
    }
}

/// A fresh database on the crash cluster: migrated, one agency registered with its own login
/// role, a bureau login role, and the agency's queue of known content (`FaultQueue`).
final class CrashWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let cluster: LocalCluster
    let database: String
    let directory: TemporaryDirectory
    let faults: FaultQueue
    let agencyRole: String
    let bureauRole: String
    private var connection: Connection?

    init(applications: Int) throws {
        cluster = try CrashCluster.shared.get().cluster
        try cluster.start()  // a failed test may have left it stopped
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8))
        database = "crash_\(tag.lowercased())"
        try Connection(conninfo: cluster.connectionURI()).executeScript("CREATE DATABASE \(database)")
        directory = try TemporaryDirectory(prefix: "cs-crash")
        let agency = Agency(code: "K\(tag)", name: "岳麓区网点 \(tag)", district: "岳麓区", channel: .counter)
        faults = try FaultQueue(at: directory.url.appendingPathComponent("queue"), agency: agency)
        try faults.add(applications: applications)
        let db = try Connection(conninfo: cluster.connectionURI(database: database))
        _ = try Migrator(connection: db, logger: .test).migrate()
        try AgencyRegistry(connection: db).add(agency)
        agencyRole = try StagedRoleWorld.rotate(agency.code, on: db)
        bureauRole = "t_cbureau_\(tag.lowercased())"
        try db.executeScript("CREATE ROLE \(try db.escapeIdentifier(bureauRole)) LOGIN IN ROLE cardsync_bureau")
        connection = db
    }

    /// The database's URI over the cluster's socket (trusted), logging in as `role`.
    func uri(as role: String = "postgres") -> String {
        cluster.connectionURI(database: database).replacingOccurrences(of: "&user=postgres", with: "&user=\(role)")
    }

    /// The owner's connection, opened again after a crash.
    var db: Connection {
        get throws {
            if let connection, connection.isHealthy { return connection }
            connection = try Connection(conninfo: uri())
            return connection!
        }
    }

    var queue: QueueDirectory { faults.queue }

    /// A sync with the agency's own role: it stages, the bureau merges.
    var stagedSync: [String] {
        ["sync", queue.path, "--database", uri(as: agencyRole), "--batch-size", "10", "--merge-wait", "0", "--wait", "30"]
    }

    /// A sync with the owner's role: it merges in-process.
    var inProcessSync: [String] { ["sync", queue.path, "--database", uri(), "--batch-size", "10", "--wait", "30"] }

    var merge: [String] { ["merge", "--database", uri(as: bureauRole)] }

    func run(_ arguments: [String]) throws -> CardsyncCLI.Output {
        try CardsyncCLI.run(arguments, scratch: directory.url)
    }

    func start(_ arguments: [String]) throws -> CardsyncCLI.Running {
        try CardsyncCLI.start(arguments, scratch: directory.url)
    }

    /// One sync with the agency's own role (it stages), not waiting for the merge.
    @discardableResult
    func syncAsAgency() throws -> AgencySyncResult {
        var options = SyncOptions()
        options.batchSize = 10
        options.mergeWait = .zero
        return try AgencySync(queue: queue, connection: try Connection(conninfo: uri(as: agencyRole)), options: options, logger: .test).run()
    }

    /// One run of the bureau's merge, on two connections as the command makes them.
    @discardableResult
    func mergeAsBureau() throws -> StagedBatchMerger.Totals {
        try StagedBatchMerger(connection: try Connection(conninfo: uri(as: bureauRole)),
                              projection: try Connection(conninfo: uri(as: bureauRole)), logger: .init(label: "test.merge")).mergeAll()
    }

    /// One sync with the owner's role, merging in-process on two connections.
    func syncInProcess() throws -> AgencySyncResult {
        var options = SyncOptions()
        options.batchSize = 10
        return try AgencySync(queue: queue, connection: try Connection(conninfo: uri()), projection: try Connection(conninfo: uri()),
                              options: options, logger: .test).run()
    }

    /// Stops the server as a crash would and starts it again (recovery from the WAL).
    func crashAndRestart(downFor seconds: Double = 0) throws {
        try cluster.crash()
        connection = nil
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
        try cluster.start()
    }

    /// Staged batches: all, and those merged.
    func stagedBatches() throws -> (total: Int, merged: Int) {
        let row = try db.query("SELECT count(*), count(merged_at) FROM cardsync.staged_batches")[0]
        return (Int(try row.decode(Int64.self, at: 0)), Int(try row.decode(Int64.self, at: 1)))
    }

    func count(_ sql: PostgresQuery) throws -> Int { Int(try db.query(sql)[0].decode(Int64.self, at: 0)) }
}

/// Holds one server process at a chosen point until the test crashes the server: a trigger the
/// test installs (as the owner) that, at its `hit`-th firing, waits for an advisory lock the test
/// holds. Unlike a timer, the crash then always lands at that point, however loaded the machine.
final class ServerGate {
    enum Point: Sendable, CustomStringConvertible {
        /// Before a row is written, inside the statement (mid-COPY, mid-`stage_batch`).
        case beforeRow(String)
        /// At the commit of a transaction that wrote a row (`event` INSERT or UPDATE): a deferred
        /// constraint trigger, run when COMMIT arrives, before the commit record is written.
        case atCommit(String, event: String)

        var table: String {
            switch self {
            case .beforeRow(let table), .atCommit(let table, _): return table
            }
        }

        var description: String {
            switch self {
            case .beforeRow(let table): return "before a row of \(table)"
            case .atCommit(let table, let event): return "at the commit of an \(event) of \(table)"
            }
        }
    }

    static let key: Int64 = 0x6661_756C_7467  // "faultg"
    let point: Point
    private let holder: Connection

    init(_ point: Point, hit: Int, world: CrashWorld) throws {
        self.point = point
        holder = try Connection(conninfo: world.uri())
        let trigger: String
        switch point {
        case .beforeRow(let table):
            trigger = "CREATE TRIGGER fault_gate BEFORE INSERT ON \(table) FOR EACH ROW EXECUTE FUNCTION public.fault_gate('\(hit)')"
        case .atCommit(let table, let event):
            trigger = """
                CREATE CONSTRAINT TRIGGER fault_gate AFTER \(event) ON \(table) DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION public.fault_gate('\(hit)')
                """
        }
        // A sequence counts firings across transactions (it is not rolled back).
        try holder.executeScript("""
            CREATE SEQUENCE IF NOT EXISTS public.fault_gate_hits;
            CREATE OR REPLACE FUNCTION public.fault_gate() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
            BEGIN
                IF nextval('public.fault_gate_hits') = TG_ARGV[0]::int8 THEN
                    PERFORM pg_advisory_xact_lock_shared(\(Self.key));
                END IF;
                RETURN NEW;
            END
            $fn$;
            GRANT EXECUTE ON FUNCTION public.fault_gate() TO PUBLIC;
            SELECT setval('public.fault_gate_hits', 1, false);
            \(trigger);
            """)
        try holder.execute("SELECT pg_advisory_lock($1)", [.int64(Self.key)])
    }

    /// Waits until a server process waits at the gate; throws if `run` ends before that.
    func waitUntilReached(by run: CardsyncCLI.Running) throws {
        let deadline = ContinuousClock.now + .seconds(180)  // a safety net only
        while ContinuousClock.now < deadline {
            let waiting = try holder.query("""
                SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 1
                """, [.int64(Self.key >> 32), .int64(Self.key & 0xFFFF_FFFF)])
            if try waiting[0].decode(Int64.self, at: 0) > 0 { return }
            guard run.process.isRunning else {
                let output = run.wait()
                throw SyncError("the run ended before it reached the gate \(point): \(output.summary)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw SyncError("the gate \(point) was not reached within the safety timeout")
    }

    /// Drops the trigger (after the restart; the crash already released the lock).
    func remove(on db: Connection) throws {
        try db.executeScript("DROP TRIGGER IF EXISTS fault_gate ON \(point.table)")
    }
}

extension CrashWorld {
    /// Starts `arguments`, crashes the server once the run waits at `gate`, restarts it, and
    /// returns how the run ended. The gate is gone afterwards.
    func crash(_ arguments: [String], at point: ServerGate.Point, hit: Int) throws -> CardsyncCLI.Output {
        let gate = try ServerGate(point, hit: hit, world: self)
        let running = try start(arguments)
        do {
            try gate.waitUntilReached(by: running)
        } catch {
            running.kill()
            _ = running.wait()
            throw error
        }
        try cluster.crash()
        let output = running.wait()
        try cluster.start()
        connection = nil
        try gate.remove(on: try db)
        return output
    }
}
