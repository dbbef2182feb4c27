import CardCore
import CardDatabase
import CardSync
import Foundation
import Logging
import PostgresClient

/// (b2) of `bench sync`: every agency syncs with its own database role, staging its batches,
/// while one `cardsync merge --follow` (the bureau's merge role) applies them; timed from the
/// first sync's start to the moment the last staged batch is merged.
struct StagedSyncBench {
    let bench: BenchDatabases
    let queues: [String]
    /// Agency syncs running at once (each a process of its own, as at separate agencies).
    let jobs: Int

    struct Outcome {
        var seconds: Double
        var syncPeakRSS: Int
        var mergePeakRSS: Int
        var ledgerRows: Int
    }

    func run(round: Int) throws -> Outcome {
        let database = try bench.create("s\(round)")
        let owner = try Connection(conninfo: database)
        _ = try Migrator(connection: owner, logger: Logger(label: "cardsync.migrate")).migrate()
        let registry = AgencyRegistry(connection: owner)
        var agencyURIs: [String] = []
        for path in queues {
            let agency = try QueueDirectory(path: path).readAgency()
            try registry.add(agency)
            let (role, password) = try registry.rotateCredentials(agency.code)
            agencyURIs.append(BenchDatabases.conninfo(database, user: role, password: password))
        }
        // The merge runs as a member of cardsync_merge, as the bureau's service does. On a server
        // that wants a password for it (the bench creates it without one), the owner merges.
        try owner.executeScript("""
            DO $do$ BEGIN
                CREATE ROLE cardsync_bench_merge LOGIN IN ROLE cardsync_merge;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $do$
            """)
        var mergeURI = BenchDatabases.conninfo(database, user: "cardsync_bench_merge", password: nil)
        if (try? Connection(conninfo: mergeURI)) == nil {
            printError("(b2) cannot log in as cardsync_bench_merge without a password here; the owner's role merges")
            mergeURI = database
        }
        try bench.settle(database)

        let merge = try RunningChild(["merge", "--follow", "--database", mergeURI, "--poll-interval", "1"])
        let started = ContinuousClock.now
        let board = ChildProcessBoard(count: queues.count)
        let (paths, uris) = (queues, agencyURIs)
        ConcurrentWorkers.run(max(1, min(jobs, paths.count))) { _ in
            while let index = board.next() {
                let outcome = Result {
                    try ChildProcess.runCardsync(["sync", paths[index], "--database", uris[index], "--merge-wait", "0", "--json"])
                }
                board.record("an agency's staged sync", outcome)
            }
        }
        if let failure = board.failure {
            _ = merge.stop()
            throw CommandFailure("(b2) an agency's staged sync failed: \(failure)")
        }
        // Every batch is staged now; wait for the merge service to apply the last one.
        let watcher = try Connection(conninfo: database)
        while true {
            let left = try watcher.query("SELECT count(*) AS n FROM cardsync.staged_batches WHERE merged_at IS NULL")
            if try left.first?.decode(Int64.self, column: "n") == 0 { break }
            guard merge.isRunning else { throw CommandFailure("(b2) the merge service stopped before applying every staged batch") }
            usleep(20_000)
        }
        let seconds = (ContinuousClock.now - started).seconds
        let stopped = merge.stop()
        guard stopped.status == 0 else { throw CommandFailure("(b2) cardsync merge --follow exited \(stopped.status) on SIGTERM") }
        let rows = try watcher.query("SELECT count(*) AS n FROM cardsync.ledger")
        return Outcome(seconds: seconds, syncPeakRSS: board.peakRSS, mergePeakRSS: stopped.peakBytes,
                       ledgerRows: Int(try rows.first?.decode(Int64.self, column: "n") ?? 0))
    }
}
