import CardCore
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// The central server crashes (`pg_ctl -m immediate`) under an agency's staged sync, under the
// bureau's merge and under an in-process sync, at chosen moments (ServerGate) and at seeded
// random ones; it is started again and the next runs complete: every valid event in the ledger
// exactly once, every malformed line quarantined once, `db verify` clean. All on the crash
// tests' own durable cluster (ServerCrashFixtures.swift).

@Suite("Server crash", .serialized)
struct ServerCrashTests {
    enum Runner: Sendable { case stagedSync, merge, inProcessSync }

    /// A run, and where the server crashes under it.
    struct Moment: Sendable, CustomTestStringConvertible {
        var runner: Runner
        var point: ServerGate.Point
        var hit: Int
        var testDescription: String

        init(_ runner: Runner, _ point: ServerGate.Point, hit: Int, _ description: String) {
            self.runner = runner
            self.point = point
            self.hit = hit
            testDescription = description
        }

        /// Between the ledger's commit and the projection's (CentralMerge's window).
        var betweenCommits: Bool {
            if case .atCommit("cardsync.projection_state", _) = point { return true }
            return false
        }
    }

    // 40 applications: 80 valid lines and 4 malformed ones (lines 19, 38, 57, 76), in a first batch
    // of 1 line and then batches of 10 lines: the ledger rows of batches 1-5 are 1, 2-11, 12-20,
    // 21-30, 31-39.
    static let moments: [Moment] = [
        .init(.stagedSync, .beforeRow("cardsync.staged_lines"), hit: 3, "staged sync, inside stage_batch of the 3rd batch"),
        .init(.stagedSync, .atCommit("cardsync.staged_batches", event: "INSERT"), hit: 6, "staged sync, at the commit of the 6th batch"),
        .init(.merge, .beforeRow("cardsync.ledger"), hit: 25, "merge, mid-COPY of the ledger (4th batch)"),
        .init(.merge, .atCommit("cardsync.staged_batches", event: "UPDATE"), hit: 2, "merge, at the ledger's commit of the 2nd batch"),
        .init(.merge, .atCommit("cardsync.projection_state", event: "UPDATE"), hit: 5, "merge, between the two commits of the 5th batch"),
        .init(.inProcessSync, .atCommit("cardsync.projection_state", event: "UPDATE"), hit: 3,
              "in-process sync, between the two commits of the 3rd batch"),
    ]

    @Test("a run under which the server crashes fails cleanly, and after the restart the next runs finish its work exactly once",
          arguments: moments)
    func crashAtAMoment(_ moment: Moment) throws {
        let w = try CrashWorld(applications: 40)
        var crashed: CardsyncCLI.Output
        switch moment.runner {
        case .stagedSync:
            crashed = try w.crash(w.stagedSync, at: moment.point, hit: moment.hit)
            // Staging is one statement: the batch in hand is staged whole or not at all.
            #expect(try w.stagedBatches().total == moment.hit - 1)
        case .merge:
            try w.syncAsAgency()
            let staged = try w.stagedBatches().total
            crashed = try w.crash(w.merge, at: moment.point, hit: moment.hit)
            let batches = try w.stagedBatches()
            #expect(batches.merged < staged, "the crash left batches to merge")
            // A batch is merged exactly when its events are in the ledger (one transaction).
            #expect(try w.count("SELECT coalesce(sum(line_count), 0) FROM cardsync.staged_batches WHERE merged_at IS NOT NULL")
                    == (try w.count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'")))
            if moment.betweenCommits { #expect(batches.merged == moment.hit, "the ledger's commit of the batch survived") }
        case .inProcessSync:
            crashed = try w.crash(w.inProcessSync, at: moment.point, hit: moment.hit)
            #expect(try w.count("SELECT count(*) FROM cardsync.ledger") < w.faults.eventIDs.count)
        }
        #expect(crashed.failedCleanly && crashed.namesLostConnection, "\(crashed.summary)")
        // In the window, the ledger holds the batch and the projection does not: its watermark
        // is behind, which the next merge (or sync) repairs before anything else.
        let mark = try ProjectionWatermark.read(on: try w.db)
        #expect(mark.isCurrent == !moment.betweenCommits, "watermark \(mark.through), ledger \(mark.last)")

        // The next runs, in-process (the same code the command runs, without a process each).
        switch moment.runner {
        case .stagedSync, .merge:
            try w.syncAsAgency()
            try w.mergeAsBureau()
            try w.syncAsAgency()
        case .inProcessSync:
            let result = try w.syncInProcess()
            // The batch whose ledger commit survived is offered again and recognised.
            #expect((result.alreadyPresent > 0) == moment.betweenCommits, "already present: \(result.alreadyPresent)")
        }
        try w.faults.expectSettled(on: try w.db)
    }

    static let retryMoments: [Moment] = [
        .init(.stagedSync, .beforeRow("cardsync.staged_lines"), hit: 3, "staged sync, inside stage_batch of the 3rd batch"),
        .init(.inProcessSync, .beforeRow("cardsync.ledger"), hit: 25, "in-process sync, mid-COPY of the ledger (4th batch)"),
    ]

    @Test("sync --retry 5 outlives a server crash under it: it reconnects once the server is back and finishes",
          arguments: retryMoments)
    func retryOutlivesACrash(_ moment: Moment) throws {
        let w = try CrashWorld(applications: 40)
        let gate = try ServerGate(moment.point, hit: moment.hit, world: w)
        let sync = try w.start((moment.runner == .stagedSync ? w.stagedSync : w.inProcessSync) + ["--retry", "5"])
        defer { if sync.process.isRunning { sync.kill() } }
        try gate.waitUntilReached(by: sync)
        try w.crashAndRestart()
        let output = sync.wait()
        #expect(output.succeeded, "\(output.summary)")
        #expect(output.stderr.contains("retrying"), "it said it retries: \(output.summary)")
        try gate.remove(on: try w.db)
        if moment.runner == .stagedSync {
            try w.mergeAsBureau()
            try w.syncAsAgency()
        }
        try w.faults.expectSettled(on: try w.db)
    }

    @Test("a connection left idle while the server crashed is not healthy, and its next statement is a lost connection (retryable)")
    func idleConnectionAfterACrash() throws {
        let w = try CrashWorld(applications: 0)
        let probed = try Connection(conninfo: w.uri())
        let used = try Connection(conninfo: w.uri())
        try w.crashAndRestart()
        // libpq itself still calls both CONNECTION_OK here; only a use shows the break.
        #expect(!probed.isHealthy)
        for connection in [probed, used] {
            let error = #expect(throws: PostgresError.self) { try connection.query("SELECT 1") }
            #expect(error?.kind == .connection && error?.isRetryable == true, "\(String(describing: error))")
            #expect(error?.message.contains("db \(w.database)") == true && error?.message.contains("was lost") == true,
                    "names the connection that was lost: \(String(describing: error))")
        }
        #expect(!used.isHealthy)
    }

    @Test("merge --follow outlives a server that crashed at a ledger commit and stays down a few seconds")
    func followOutlivesACrash() throws {
        let w = try CrashWorld(applications: 40)
        try w.syncAsAgency()
        let staged = try w.stagedBatches().total
        let gate = try ServerGate(.atCommit("cardsync.staged_batches", event: "UPDATE"), hit: 3, world: w)
        let follow = try w.start(w.merge + ["--follow", "--poll-interval", "0.2"])
        defer { if follow.process.isRunning { follow.kill() } }
        try gate.waitUntilReached(by: follow)
        // Down for longer than the service's first reconnect delay (1 s), as a restart on a busy
        // host is: the service must keep trying, not give up at the first refusal.
        try w.crashAndRestart(downFor: 4)
        try gate.remove(on: try w.db)
        #expect(try w.stagedBatches().merged == 2, "the batch at the gate was not merged")

        try Self.waitUntilMerged(w, staged: staged, while: follow)
        #expect(follow.process.isRunning, "the service gave up instead of reconnecting")
        kill(follow.process.processIdentifier, SIGTERM)
        let stopped = follow.wait()
        #expect(stopped.succeeded, "\(stopped.summary)")
        #expect(stopped.stderr.contains("reconnecting"), "it said it lost the database: \(stopped.summary)")
        // Whatever became of the service, a one-shot merge finishes the work.
        let merge = try w.run(w.merge)
        #expect(merge.succeeded, "\(merge.summary)")
        try w.syncAsAgency()
        try w.faults.expectSettled(on: try w.db)
    }

    @Test("the server crashes at seeded random moments of staged syncs and merges; after each restart the next runs finish the work")
    func seededRandomCrashes() throws {
        let w = try CrashWorld(applications: 0)
        var random = SplitMix(seed: 20_261_208)
        for round in 0..<4 {
            try w.faults.add(applications: 15)
            // Even rounds crash a staged sync, odd ones a merge of what the agency staged.
            if round % 2 == 1 { try w.syncAsAgency() }
            let run = try w.start(round % 2 == 0 ? w.stagedSync : w.merge)
            let delay = Double(random.next() % 600) / 1000
            Thread.sleep(forTimeInterval: delay)
            try w.crashAndRestart()
            let output = run.wait()
            // Wherever the crash fell: done, or exit 1 with a message; never a crash of ours.
            #expect(output.succeeded || output.failedCleanly, "round \(round), crash after \(delay) s: \(output.summary)")
        }
        try w.syncAsAgency()
        try w.mergeAsBureau()
        try w.syncAsAgency()
        try w.faults.expectSettled(on: try w.db)
    }

    /// Waits until `staged` batches are merged (by a running `merge --follow`).
    static func waitUntilMerged(_ w: CrashWorld, staged: Int, while follow: CardsyncCLI.Running) throws {
        let deadline = ContinuousClock.now + .seconds(180)  // a safety net only
        while try w.stagedBatches().merged < staged {
            guard follow.process.isRunning, ContinuousClock.now < deadline else {
                if follow.process.isRunning { follow.kill() }
                throw SyncError("merge --follow did not merge every staged batch: \(try w.stagedBatches()); \(follow.wait().summary)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

/// A small seeded generator (SplitMix64): the same delays on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
