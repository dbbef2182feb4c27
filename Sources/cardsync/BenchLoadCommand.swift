import ArgumentParser
import CardCore
import CardDatabase
import CardSync
import Foundation
import Logging
import PostgresClient
import Workload

/// `cardsync bench load`: a city's worth of agencies syncing at once, as at a real site.
///
/// Most agencies sync with their own database role, each as a process of its own (as on their
/// own machines), `--processes` at a time; the rest are synced by one bureau-side process with
/// `--jobs`. Meanwhile the bureau imports its decisions and `cardsync merge --follow` applies what
/// the agencies stage. Then every agency syncs again to pull the decisions. The run fails (exit 1)
/// unless nothing was lost or doubled: every valid outbox event in the ledger exactly once, every
/// invalid line quarantined, every staged batch merged, every inbox equal to its agency's
/// deliveries, `db verify` clean, and no process failed (a deadlock would fail one).
struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load test: many agencies with their own roles sync at once while the bureau imports and merges.",
        discussion: """
            Examples:
              cardsync bench load                                   # 200 agencies, about 44,000 events
              cardsync bench load --agencies 200 --applications 200000 --processes 16 --json
            """)

    @Option(help: "Agencies.") var agencies = 200
    @Option(help: "Applications in the generated city (outbox events are about 2.2 per application).") var applications = 20_000
    @Option(help: "Agency sync processes running at once (each with its agency's own role).") var processes = 16
    @Option(help: "Agencies synced by one bureau-side process with --jobs, out of --agencies.") var bureauAgencies = 40
    @Option(help: "--jobs of the bureau-side sync.") var jobs = 16
    @Option(help: "Invalid lines in the outboxes, as a share of the valid ones.") var faultRate = 0.01
    @Option(help: "Random seed of the workload.") var seed: UInt64 = 7
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        guard agencies >= 2 else { throw ValidationError("--agencies must be at least 2") }
        guard (0..<agencies).contains(bureauAgencies) else {
            throw ValidationError("--bureau-agencies must be between 0 and --agencies − 1 (at least one agency syncs with its own role)")
        }
        guard processes >= 1, jobs >= 1 else { throw ValidationError("--processes and --jobs must be at least 1") }
    }

    func run() throws {
        let bench = try BenchDatabases(selection: db.selection, prefix: "cardsync_bench_load")
        defer { bench.dropAll() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cardsync-bench-load-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = WorkloadSpec(agencies: agencies, applications: applications, months: 6, seed: seed, faultRate: faultRate,
                                end: CivilDate(year: 2026, month: 11, day: 1)!)
        printError("generating \(applications) applications over \(agencies) agencies…")
        let summary = try WorkloadGenerator.generate(spec: spec, into: dir)
        let world = try LoadWorld(bench: bench, summary: summary, directory: dir, bureauAgencies: bureauAgencies)

        let merge = try RunningChild(["merge", "--follow", "--database", world.mergeURI, "--poll-interval", "1"])
        printError("round 1: \(world.staged.count) agency processes (\(processes) at a time), one bureau sync of "
                   + "\(world.bureauQueues.count) queues (--jobs \(jobs)), bureau import, merge --follow…")
        let push = try world.round(processes: processes, jobs: jobs, importDecisions: true, mergeWait: 0, merge: merge)
        printError("round 2: every agency syncs again and pulls its decisions…")
        let pull = try world.round(processes: processes, jobs: jobs, importDecisions: false, mergeWait: 60, merge: merge)
        let stopped = merge.stop()
        guard stopped.status == 0 else { throw CommandFailure("cardsync merge --follow exited \(stopped.status) on SIGTERM") }

        let problems = try world.check(summary)
        let events = summary.outboxEvents
        if json {
            let peakSync = max(push.peakRSS, pull.peakRSS)
            let fields: [(String, JSONValue)] = [
                ("agencies", .int(Int64(agencies))), ("events", .int(Int64(events))),
                ("bureau_decisions", .int(Int64(summary.bureauDecisions))),
                ("push_seconds", .double(push.seconds)), ("events_per_second", .double(Double(events) / push.seconds)),
                ("pull_seconds", .double(pull.seconds)),
                ("agency_sync_median_seconds", .array([.double(push.agencyMedian), .double(pull.agencyMedian)])),
                ("agency_sync_max_seconds", .array([.double(push.agencyMax), .double(pull.agencyMax)])),
                ("agency_sync_peak_rss_bytes", .int(Int64(peakSync))), ("merge_peak_rss_bytes", .int(Int64(stopped.peakBytes))),
                ("problems", .array(problems.map { JSONValue.string($0) })),
            ]
            print(JSONWriter.object(fields, pretty: true))
        } else {
            print("""
                Load: \(agencies) agencies (\(world.staged.count) with their own roles, \(processes) processes at a time; \
                \(world.bureauQueues.count) in one bureau sync with --jobs \(jobs)), \(events) outbox events, \
                \(summary.bureauDecisions) bureau decisions imported at the same time, one merge --follow.
                  round 1 (push, import, merge): \(String(format: "%.1f", push.seconds)) s, \
                \(String(format: "%.0f", Double(events) / push.seconds)) events/s; \
                one agency's sync: median \(String(format: "%.2f", push.agencyMedian)) s, slowest \(String(format: "%.2f", push.agencyMax)) s
                  round 2 (every agency pulls):  \(String(format: "%.1f", pull.seconds)) s; \
                one agency's sync: median \(String(format: "%.2f", pull.agencyMedian)) s, slowest \(String(format: "%.2f", pull.agencyMax)) s
                  peak RSS: agency sync \(max(push.peakRSS, pull.peakRSS) >> 20) MiB, merge \(stopped.peakBytes >> 20) MiB
                """)
            print(problems.isEmpty ? "Checks: nothing lost, nothing doubled, db verify clean."
                                   : "Checks FAILED:\n" + problems.map { "  - " + $0 }.joined(separator: "\n"))
        }
        if !problems.isEmpty { throw ExitCode.failure }
    }
}

/// The central database, roles and queues of one load run.
private struct LoadWorld {
    let database: String
    let mergeURI: String
    let bureauURI: String
    /// Queues synced with their agency's own role, and that role's conninfo.
    let staged: [(queue: String, uri: String)]
    let bureauQueues: [String]
    let decisions: String
    let queues: [String]

    init(bench: BenchDatabases, summary: WorkloadSummary, directory: URL, bureauAgencies: Int) throws {
        database = try bench.create("l")
        let owner = try Connection(conninfo: database)
        _ = try Migrator(connection: owner, logger: Logger(label: "cardsync.migrate")).migrate()
        let registry = AgencyRegistry(connection: owner)
        queues = summary.agencies.map { directory.appendingPathComponent($0.agency.code).path }
        decisions = directory.appendingPathComponent("bureau-decisions.jsonl").path
        var staged: [(String, String)] = []
        for (index, counts) in summary.agencies.enumerated() {
            try registry.add(counts.agency)
            if index >= bureauAgencies {
                let (role, password) = try registry.rotateCredentials(counts.agency.code)
                staged.append((queues[index], BenchDatabases.conninfo(database, user: role, password: password)))
            }
        }
        self.staged = staged
        bureauQueues = Array(queues.prefix(bureauAgencies))
        // The bureau's service roles, as `docs/security.md` sets them up; where the server wants a
        // password for a role the bench made without one, the owner stands in (and says so).
        try owner.executeScript("""
            DO $do$ BEGIN
                CREATE ROLE cardsync_bench_merge LOGIN IN ROLE cardsync_merge;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $do$;
            DO $do$ BEGIN
                CREATE ROLE cardsync_bench_bureau LOGIN IN ROLE cardsync_bureau;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $do$
            """)
        let database = database
        func loginOrOwner(_ user: String) -> String {
            let uri = BenchDatabases.conninfo(database, user: user, password: nil)
            if (try? Connection(conninfo: uri)) != nil { return uri }
            printError("cannot log in as \(user) without a password here; the owner's role stands in")
            return database
        }
        mergeURI = loginOrOwner("cardsync_bench_merge")
        bureauURI = loginOrOwner("cardsync_bench_bureau")
        try bench.settle(database)
    }

    struct RoundOutcome {
        var seconds: Double
        var peakRSS: Int
        /// Median and slowest agency sync process, seconds.
        var agencyMedian: Double
        var agencyMax: Double
    }

    /// Every staged agency's own sync process, the bureau-side sync and (in round 1) the import, all
    /// at once; returns when they have exited and the merge service has applied every staged batch.
    func round(processes: Int, jobs: Int, importDecisions: Bool, mergeWait: Int, merge: RunningChild) throws -> RoundOutcome {
        let outcomes = ChildProcessBoard(count: staged.count)
        let started = ContinuousClock.now
        let staged = staged, bureauQueues = bureauQueues, bureauURI = bureauURI, decisions = decisions
        // Lane 0: the agencies' own processes; lane 1: the bureau's sync; lane 2: the import.
        ConcurrentWorkers.run(3) { lane in
            switch lane {
            case 0:
                ConcurrentWorkers.run(max(1, min(processes, staged.count))) { _ in
                    while let index = outcomes.next() {
                        let (queue, uri) = staged[index]
                        outcomes.record("agency sync of \(URL(fileURLWithPath: queue).lastPathComponent)", Result {
                            try ChildProcess.runCardsync(["sync", queue, "--database", uri, "--merge-wait", "\(mergeWait)", "--json"])
                        })
                    }
                }
            case 1 where !bureauQueues.isEmpty:
                outcomes.record("bureau sync", timed: false, Result {
                    try ChildProcess.runCardsync(["sync", "--database", bureauURI, "--jobs", "\(jobs)", "--json"] + bureauQueues)
                })
            case 2 where importDecisions:
                outcomes.record("bureau import", timed: false, Result {
                    try ChildProcess.runCardsync(["bureau", "import", decisions, "--database", bureauURI, "--json"])
                })
            default:
                break
            }
        }
        if let failure = outcomes.failure { throw CommandFailure(failure) }
        let watcher = try Connection(conninfo: database)
        while try watcher.query("SELECT count(*) AS n FROM cardsync.staged_batches WHERE merged_at IS NULL")[0]
            .decode(Int64.self, column: "n") > 0
        {
            guard merge.isRunning else { throw CommandFailure("the merge service stopped before applying every staged batch") }
            usleep(20_000)
        }
        let each = outcomes.seconds.sorted()
        return RoundOutcome(seconds: (ContinuousClock.now - started).seconds, peakRSS: outcomes.peakRSS,
                            agencyMedian: each.isEmpty ? 0 : each[each.count / 2], agencyMax: each.last ?? 0)
    }

    /// Everything that must hold after the run; each failed check is one line.
    func check(_ summary: WorkloadSummary) throws -> [String] {
        var problems: [String] = []
        let central = try Connection(conninfo: database)
        func count(_ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
            Int(try central.query(sql, parameters)[0].decode(Int64.self, at: 0))
        }
        let agencyEvents = try count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'")
        let distinct = try count("SELECT count(DISTINCT event_id) FROM cardsync.ledger WHERE origin = 'agency'")
        if agencyEvents != summary.outboxEvents || distinct != agencyEvents {
            problems.append("ledger holds \(agencyEvents) agency events (\(distinct) distinct); the outboxes hold \(summary.outboxEvents) valid ones")
        }
        let unmerged = try count("SELECT count(*) FROM cardsync.staged_batches WHERE merged_at IS NULL")
        let refused = try count("SELECT count(*) FROM cardsync.refused_lines")
        if unmerged != 0 || refused != 0 { problems.append("\(unmerged) staged batches unmerged, \(refused) staged lines refused") }
        for (index, counts) in summary.agencies.enumerated() {
            let queue = URL(fileURLWithPath: queues[index])
            let quarantined = Self.lineCount(queue.appendingPathComponent("quarantine.jsonl"))
            if quarantined != counts.faultyLines {
                problems.append("\(counts.agency.code): \(quarantined) lines quarantined, \(counts.faultyLines) invalid ones written")
            }
            let inbox = Self.lineCount(queue.appendingPathComponent("inbox.jsonl"))
            let delivered = try count("SELECT count(*) FROM cardsync.deliveries WHERE agency_code = $1", [.text(counts.agency.code)])
            if inbox != delivered { problems.append("\(counts.agency.code): inbox has \(inbox) lines, the centre delivered \(delivered)") }
        }
        let verify = try ChildProcess.runCardsync(["db", "verify", "--database", database])
        if verify.status != 0 { problems.append("db verify exited \(verify.status)") }
        return problems
    }

    static func lineCount(_ file: URL) -> Int {
        guard let data = try? Data(contentsOf: file) else { return 0 }
        return data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
    }
}
