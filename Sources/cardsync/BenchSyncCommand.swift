import ArgumentParser
import CardCore
import CardDatabase
import CardSync
import Foundation
import Logging
import PostgresClient
import Workload

/// `cardsync bench sync`: the sync benchmark of the issue, measured side by side in one run.
///
/// (a) the limit: the same ledger rows loaded with plain binary COPY into an identical empty
///     ledger table; (b) `cardsync sync` of every agency into an empty central database (a child
///     process, so its peak memory is its own), as the owner, merging in-process; (b2) every
///     agency syncing with its own role, staging, while one `cardsync merge --follow` applies
///     (`StagedSyncBench`); (c) the same sync again with nothing new;
///     (d) the naive peer: one parameterized INSERT per event in one transaction, on a sample,
///     extrapolated.
///
/// (b) and (a) alternate for a few rounds and the ratio is the median of the rounds' ratios:
/// on these shared machines the same work takes up to a tenth longer from one minute to the
/// next, and a single pair says as much about the machine as about sync.
struct BenchSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Benchmark sync against plain COPY and per-row INSERT (ratios measured in one run).",
        discussion: """
            Examples:
              cardsync bench sync
              cardsync bench sync --events 200000 --jobs 2 --json
            """)

    @Option(help: "Outbox events to generate (about).") var events = 1_000_000
    @Option(help: "Agencies.") var agencies = 100
    @Option(help: "Agencies synced at once (each job holds its own batches: about 40 MiB more per job).") var jobs = 1
    @Option(help: "Rounds of (b) then (a); the ratio is the median of theirs.") var rounds = 3
    @Option(help: "Events in the naive per-row INSERT sample.") var naiveSample = 20_000
    @Option(help: "Random seed of the workload.") var seed: UInt64 = 42
    @Option(help: "Keep the generated workload here instead of a temporary directory.") var workload: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Skip (b2), the staged path with agency roles and a merge service.") var skipStaged = false
    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
    }

    func run() throws {
        let bench = try BenchDatabases(selection: db.selection, prefix: "cardsync_bench_sync")
        defer { bench.dropAll() }
        let dir = workload.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("cardsync-bench-\(getpid())")
        defer { if workload == nil { try? FileManager.default.removeItem(at: dir) } }

        // Outbox events per application average about 2.2 in the generated city.
        let spec = WorkloadSpec(agencies: agencies, applications: max(1, Int(Double(events) / 2.2)), months: 12,
                                seed: seed, end: CivilDate(year: 2026, month: 11, day: 1)!)
        printError("generating \(events) events over \(agencies) agencies in \(dir.path)…")
        let summary = try WorkloadGenerator.generate(spec: spec, into: dir)
        let queues = summary.agencies.map { dir.appendingPathComponent($0.agency.code).path }
        let n = summary.outboxEvents

        let ledgerFile = FileManager.default.temporaryDirectory.appendingPathComponent("cardsync-bench-ledger-\(getpid()).bin")
        defer { try? FileManager.default.removeItem(at: ledgerFile) }
        var measured: [BenchSyncRound] = []
        var lastSyncDB = ""
        var ledgerRows = 0
        for round in 1...rounds {
            // (b2) the two-stage path, into an empty database of its own (first, so that the
            // queues' checkpoints after the round are (b)'s, which (c) re-syncs).
            var staged: StagedSyncBench.Outcome?
            if !skipStaged {
                try Self.forgetSyncs(queues)
                printError("round \(round)/\(rounds): (b2) agencies stage with their own roles, merge --follow applies…")
                staged = try StagedSyncBench(bench: bench, queues: queues, jobs: jobs).run(round: round)
                bench.drop("s\(round)")
            }
            // (b) full sync into an empty database, from queues as the generator left them.
            try Self.forgetSyncs(queues)
            let syncDB = try bench.create("b\(round)")
            // Migrated as an operator's `db migrate` would (sync only checks the schema).
            _ = try Migrator(connection: try Connection(conninfo: syncDB), logger: Logger(label: "cardsync.migrate")).migrate()
            try bench.settle(syncDB)
            printError("round \(round)/\(rounds): (b) syncing \(n) events…")
            let b = try ChildProcess.runCardsync(["sync", "--database", syncDB, "--jobs", "\(jobs)", "--json"] + queues)
            guard b.status == 0 else { throw CommandFailure("(b) sync failed with exit status \(b.status)") }
            if round == 1 { ledgerRows = try Self.exportLedger(from: syncDB, to: ledgerFile) }
            if round > 1 { bench.drop("b\(round - 1)") }   // a gigabyte each
            lastSyncDB = syncDB
            // Settle the server before the next timed step: the freshly loaded database would
            // otherwise be vacuumed and checkpointed by the server while (a) runs.
            try bench.settle(syncDB)

            // (a) the same ledger rows, plain COPY into an identical empty table.
            printError("round \(round)/\(rounds): (a) plain COPY of the same rows…")
            let a = try plainCopySeconds(of: ledgerFile, bench: bench, round: round)

            if let staged, staged.ledgerRows != ledgerRows {
                throw CommandFailure("(b2) left \(staged.ledgerRows) ledger rows, (b) \(ledgerRows): the two paths disagree")
            }
            measured.append(BenchSyncRound(copySeconds: a, syncSeconds: b.seconds, syncPeakRSS: b.maxRSSBytes,
                                           stagedSeconds: staged?.seconds, stagedSyncPeakRSS: staged?.syncPeakRSS ?? 0,
                                           mergePeakRSS: staged?.mergePeakRSS ?? 0))
        }

        // (c) again with nothing new, after the last round's (b). Settled first, as before every
        // timed step: right after a bulk load the server's own vacuum of the new rows would
        // otherwise run during (c).
        printError("(c) re-syncing…")
        let c = try ChildProcess.runCardsync(["sync", "--database", lastSyncDB, "--jobs", "\(jobs)", "--json"] + queues)
        guard c.status == 0 else { throw CommandFailure("(c) re-sync failed with exit status \(c.status)") }

        // (d) per-row INSERT on a sample.
        printError("(d) naive per-row INSERT of \(min(naiveSample, n)) events…")
        let (sampleSize, sampleSeconds) = try naiveInsert(queues: queues, bench: bench, limit: naiveSample)
        let d = sampleSeconds / Double(max(sampleSize, 1)) * Double(ledgerRows)

        let result = BenchSyncResult(events: n, ledgerRows: ledgerRows, agencies: queues.count, jobs: jobs,
                                     rounds: measured, resyncSeconds: c.seconds,
                                     naiveSeconds: d, naiveSample: sampleSize)
        print(json ? JSONWriter.string(result.json, pretty: true) : result.text)
    }

    /// Removes what sync wrote into the queues (checkpoint, inbox, quarantine), so that the next
    /// round syncs them as the generator left them.
    private static func forgetSyncs(_ queues: [String]) throws {
        for path in queues {
            let queue = QueueDirectory(path: path)
            for file in [queue.stateFile, queue.inboxFile, queue.quarantineFile]
            where FileManager.default.fileExists(atPath: file.path) {
                try FileManager.default.removeItem(at: file)
            }
        }
    }

    /// Writes the ledger's rows in binary COPY format to `file`; returns how many.
    private static func exportLedger(from syncDB: String, to file: URL) throws -> Int {
        let source = try Connection(conninfo: syncDB)
        // A failure here shows as FileHandle's error just below, which names the file.
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        // A partitioned ledger (migration 7) is copied out through a query.
        return try source.copyOut("COPY (SELECT * FROM cardsync.ledger) TO STDOUT (FORMAT binary)") { chunk in
            handle.write(Data(chunk))
        }
    }

    /// Times the COPY into a fresh database, dropped again afterwards (its table is as large as
    /// the ledger, and nothing reads it).
    private func plainCopySeconds(of file: URL, bench: BenchDatabases, round: Int) throws -> Double {
        defer { bench.drop("a\(round)") }
        let target = try Connection(conninfo: try bench.create("a\(round)"))
        _ = try Migrator(connection: target, logger: Logger(label: "cardsync.migrate")).migrate()
        try target.executeScript("CREATE TABLE public.plain_ledger (LIKE cardsync.ledger INCLUDING ALL)")
        let reader = try FileHandle(forReadingFrom: file)
        defer { try? reader.close() }
        _ = try? target.execute("CHECKPOINT")
        let started = ContinuousClock.now
        _ = try target.copyIn("COPY public.plain_ledger FROM STDIN (FORMAT binary)") { writer in
            while let data = try reader.read(upToCount: 1 << 20), !data.isEmpty {
                try data.withUnsafeBytes { try writer.write($0) }
            }
        }
        return (ContinuousClock.now - started).seconds
    }

    private func naiveInsert(queues: [String], bench: BenchDatabases, limit: Int) throws -> (Int, Double) {
        let conn = try Connection(conninfo: try bench.create("d"))
        _ = try Migrator(connection: conn, logger: Logger(label: "cardsync.migrate")).migrate()
        let validator = EventLineValidator(mode: .outbox, now: .now)
        var sample: [(QueueEvent, String)] = []
        let perQueue = max(1, limit / max(1, queues.count) + 1)
        for path in queues where sample.count < limit {
            let queue = QueueDirectory(path: path)
            let agency = try queue.readAgency()
            try AgencyRegistry(connection: conn).add(agency)
            let reader = try OutboxReader(url: queue.outboxFile)
            for line in try reader.nextBatch(maxLines: perQueue) {
                if case .success(let e) = validator.validate(line.bytes, lineNumber: line.lineNumber, lastSeq: nil) {
                    sample.append((e, agency.code))
                }
            }
            reader.close()
        }
        sample = Array(sample.prefix(limit))
        _ = try? conn.execute("CHECKPOINT")
        let started = ContinuousClock.now
        try conn.withTransaction { conn in
            for (index, (e, agency)) in sample.enumerated() {
                try conn.execute("""
                    INSERT INTO cardsync.ledger (ledger_id, event_id, application_id, type, origin, agency_code, seq,
                                                 occurred_at, occurred_offset, data, outcome)
                    VALUES ($1, $2, $3, $4, 'agency', $5, $6, $7, $8, $9, 'applied')
                    """, [.int64(Int64(index + 1)), .uuid(e.eventID), .uuid(e.applicationID), .text(e.type.rawValue),
                          .text(agency), .int64(e.seq), .timestamp(microsecondsSince1970: e.occurredAt.microseconds),
                          .int32(e.occurredAt.offsetSeconds), .json(JSONWriter.string(e.data))])
            }
        }
        return (sample.count, (ContinuousClock.now - started).seconds)
    }
}

/// One round of `bench sync`: (b), then (a) right after it.
struct BenchSyncRound {
    var copySeconds: Double
    var syncSeconds: Double
    var syncPeakRSS: Int
    /// (b2): nil when skipped.
    var stagedSeconds: Double?
    var stagedSyncPeakRSS = 0
    var mergePeakRSS = 0
    var syncOverCopy: Double { syncSeconds / copySeconds }
    var stagedOverCopy: Double? { stagedSeconds.map { $0 / copySeconds } }
}

/// The figures of one `bench sync` run.
struct BenchSyncResult {
    var events: Int
    var ledgerRows: Int
    var agencies: Int
    var jobs: Int
    var rounds: [BenchSyncRound]
    var resyncSeconds: Double
    var naiveSeconds: Double
    var naiveSample: Int

    /// Medians over the rounds (the middle one, or the mean of the two middle ones).
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    var copySeconds: Double { Self.median(rounds.map(\.copySeconds)) }
    var syncSeconds: Double { Self.median(rounds.map(\.syncSeconds)) }
    /// The median of the rounds' own ratios: each pair ran minutes apart at most.
    var syncOverCopy: Double { Self.median(rounds.map(\.syncOverCopy)) }
    var resyncOverCopy: Double { resyncSeconds / copySeconds }
    var naiveOverSync: Double { naiveSeconds / syncSeconds }
    /// The highest peak over the rounds.
    var syncPeakRSS: Int { rounds.map(\.syncPeakRSS).max() ?? 0 }
    var peakMiB: Double { Double(syncPeakRSS) / 1_048_576 }
    var stagedOverCopy: Double? {
        let ratios = rounds.compactMap(\.stagedOverCopy)
        return ratios.isEmpty ? nil : Self.median(ratios)
    }
    var stagedSeconds: Double? {
        let values = rounds.compactMap(\.stagedSeconds)
        return values.isEmpty ? nil : Self.median(values)
    }
    var stagedPeakMiB: (sync: Double, merge: Double) {
        (Double(rounds.map(\.stagedSyncPeakRSS).max() ?? 0) / 1_048_576, Double(rounds.map(\.mergePeakRSS).max() ?? 0) / 1_048_576)
    }

    var text: String {
        func rate(_ s: Double) -> String { String(format: "%10.0f events/s", Double(ledgerRows) / s) }
        func verdict(_ ok: Bool) -> String { ok ? "met" : "NOT met" }
        let perRound = rounds.enumerated().map { index, r in
            String(format: "  round %d: (a) %6.2f s  (b) %6.2f s  b/a %.2f  peak RSS %.1f MiB", index + 1, r.copySeconds,
                   r.syncSeconds, r.syncOverCopy, Double(r.syncPeakRSS) / 1_048_576)
                + (r.stagedSeconds.map { String(format: "  (b2) %6.2f s  b2/a %.2f", $0, $0 / r.copySeconds) } ?? "")
        }.joined(separator: "\n")
        var staged = ""
        if let b2 = stagedSeconds, let ratio = stagedOverCopy {
            let peaks = stagedPeakMiB
            staged = "\n(b2) agencies stage with own roles, merge --follow applies \(String(format: "%8.2f s", b2))  \(rate(b2))  (median of \(rounds.count))"
                + "\nb2/a = \(String(format: "%.2f", ratio))  (median of the rounds' ratios; target ≤ 2.0: \(verdict(ratio <= 2.0)))"
                + "\npeak RSS of (b2): agency sync \(String(format: "%.1f", peaks.sync)) MiB, merge service \(String(format: "%.1f", peaks.merge)) MiB"
                + " (target < 150 MiB each: \(verdict(peaks.sync < 150 && peaks.merge < 150)))"
        }
        return """
            Workload: \(events) outbox events (\(ledgerRows) ledger rows) over \(agencies) agencies; sync with --jobs \(jobs)
            \(perRound)
            (a) plain COPY of the ledger rows   \(String(format: "%8.2f s", copySeconds))  \(rate(copySeconds))  (median of \(rounds.count))
            (b) cardsync sync, empty centre      \(String(format: "%8.2f s", syncSeconds))  \(rate(syncSeconds))  (median of \(rounds.count))
            (c) re-sync, nothing new             \(String(format: "%8.2f s", resyncSeconds))
            (d) naive INSERT per event (sample \(naiveSample), extrapolated) \(String(format: "%8.2f s", naiveSeconds))  \(rate(naiveSeconds))
            b/a = \(String(format: "%.2f", syncOverCopy))  (median of the rounds' ratios; target ≤ 2.0: \(verdict(syncOverCopy <= 2.0)))
            c/a = \(String(format: "%.3f", resyncOverCopy))  (c under 1 s: \(verdict(resyncSeconds < 1.0)))
            d/b = \(String(format: "%.2f", naiveOverSync))  (target ≥ 4: \(verdict(naiveOverSync >= 4)))
            peak RSS of (b) \(String(format: "%.1f", peakMiB)) MiB, highest of the rounds (target < 150 MiB: \(verdict(peakMiB < 150)))
            """ + staged
    }

    var json: JSONValue {
        [
            "events": .int(Int64(events)), "ledger_rows": .int(Int64(ledgerRows)), "agencies": .int(Int64(agencies)),
            "jobs": .int(Int64(jobs)),
            "a_copy_seconds": .double(copySeconds), "b_sync_seconds": .double(syncSeconds),
            "c_resync_seconds": .double(resyncSeconds), "d_naive_seconds": .double(naiveSeconds),
            "d_naive_sample": .int(Int64(naiveSample)),
            "b_over_a": .double(syncOverCopy), "c_over_a": .double(resyncOverCopy), "d_over_b": .double(naiveOverSync),
            "b_peak_rss_bytes": .int(Int64(syncPeakRSS)),
            "b2_staged_seconds": stagedSeconds.map(JSONValue.double) ?? .null,
            "b2_over_a": stagedOverCopy.map(JSONValue.double) ?? .null,
            "b2_sync_peak_rss_bytes": .int(Int64(rounds.map(\.stagedSyncPeakRSS).max() ?? 0)),
            "b2_merge_peak_rss_bytes": .int(Int64(rounds.map(\.mergePeakRSS).max() ?? 0)),
            "rounds": .array(rounds.map { r in
                ["a_copy_seconds": .double(r.copySeconds), "b_sync_seconds": .double(r.syncSeconds),
                 "b_over_a": .double(r.syncOverCopy), "b_peak_rss_bytes": .int(Int64(r.syncPeakRSS)),
                 "b2_staged_seconds": r.stagedSeconds.map(JSONValue.double) ?? .null,
                 "b2_over_a": r.stagedOverCopy.map(JSONValue.double) ?? .null]
            }),
            "events_per_second": .object([
                "a": .double(Double(ledgerRows) / copySeconds), "b": .double(Double(ledgerRows) / syncSeconds),
                "d": .double(Double(ledgerRows) / naiveSeconds),
            ]),
        ]
    }
}
