import CardCore
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// The connection to the central database cut (CuttingProxy) mid-COPY and around COMMIT, under the
// real `cardsync` executable: an agency's staged sync, the bureau's merge (one-shot and
// --follow) and an in-process sync. A cut run exits 1 and says the connection was lost; the next
// run (or `sync --retry`, or the merge service by itself) finishes the work: every valid event in
// the ledger once, every malformed line quarantined once, `db verify` clean. The shared test
// cluster serves: a cut breaks a session, not the server.

/// A StagedRoleWorld (an agency with its own role, a bureau role) with a queue of known content.
final class CutWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let roles: StagedRoleWorld
    let faults: FaultQueue
    var world: SyncWorld { roles.world }
    var queue: QueueDirectory { faults.queue }

    init(applications: Int = 30) throws {
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8))
        let agency = Agency(code: "C\(tag)", name: "开福区网点 \(tag)", district: "开福区", channel: .counter)
        roles = try StagedRoleWorld(agency: agency)
        faults = try FaultQueue(at: roles.world.path("queue"), agency: agency)
        try faults.add(applications: applications)
    }

    private var proxies: [CuttingProxy] = []

    deinit { for proxy in proxies { proxy.stop() } }

    /// A proxy in front of the shared test cluster's socket, stopped with the world.
    func proxy(_ cuts: CuttingProxy.Cut...) throws -> CuttingProxy {
        let status = try TestDatabase.cluster().status
        let proxy = try CuttingProxy(socket: status.socketDirectory.appendingPathComponent(".s.PGSQL.\(status.port)").path, cuts: cuts)
        proxies.append(proxy)
        return proxy
    }

    private func uri(as role: String, via proxy: CuttingProxy?) -> String {
        proxy?.uri(database: world.databaseName, user: role) ?? roles.uri(as: role)
    }

    /// 30 applications: 60 valid lines and 3 malformed ones (lines 19, 38, 57), in batches of 1
    /// line (a sync's first batch is a tenth of the others), then of 10 lines.
    func stagedSync(via proxy: CuttingProxy? = nil) -> [String] {
        ["sync", queue.path, "--database", uri(as: roles.agencyRole, via: proxy), "--batch-size", "10", "--merge-wait", "0"]
    }

    /// With the bureau's role the sync merges in-process.
    func inProcessSync(via proxy: CuttingProxy? = nil) -> [String] {
        ["sync", queue.path, "--database", uri(as: roles.bureauRole, via: proxy), "--batch-size", "10"]
    }

    func merge(via proxy: CuttingProxy? = nil) -> [String] { ["merge", "--database", uri(as: roles.bureauRole, via: proxy)] }

    func run(_ arguments: [String]) throws -> CardsyncCLI.Output { try StagedCLI.run(arguments, scratch: world.directory.url) }

    func expectSucceeds(_ arguments: [String], _ step: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try run(arguments)
        #expect(run.succeeded, "\(step): \(run.summary)", sourceLocation: sourceLocation)
    }

    /// A run through `proxy` that must be cut: exit 1, a message about the lost connection.
    func expectCut(_ arguments: [String], by proxy: CuttingProxy, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try run(arguments)
        #expect(proxy.cutsMade.count == 1, "the cut happened: \(proxy.cutsMade)", sourceLocation: sourceLocation)
        #expect(run.failedCleanly && run.namesLostConnection, "\(run.summary)", sourceLocation: sourceLocation)
    }

    func merged() throws -> Int { try world.count("SELECT count(merged_at) FROM cardsync.staged_batches") }
    func staged() throws -> Int { try world.count("SELECT count(*) FROM cardsync.staged_batches") }
    var watermarkIsCurrent: Bool { get throws { try ProjectionWatermark.read(on: try world.db).isCurrent } }
}

/// One place to cut, and what the centre holds right after it.
struct CutCase: Sendable, CustomTestStringConvertible {
    var cut: CuttingProxy.Cut
    var testDescription: String
    /// Right after the cut: batches staged (a staged sync), merged (a merge) or in the ledger (an
    /// in-process sync).
    var batches: Int
    /// Whether the projection's watermark is current right after the cut.
    var projectionCurrent = true
}

extension CuttingProxy.Cut {
    static let ledgerCopy = "COPY cardsync.ledger"
    static let projectionCopy = "COPY cardsync.applications"

    /// Half of the `n`-th CopyData message of a transaction that ran `copy`.
    static func midCopy(_ copy: String, _ n: Int) -> Self {
        .init(.clientToServer, .message("d", following: copy, occurrence: n, keep: .half))
    }
    /// The `n`-th COMMIT of a transaction that ran `copy`, never sent to the server.
    static func commitUnsent(_ copy: String, _ n: Int) -> Self {
        .init(.clientToServer, .message("PQ", containing: "COMMIT", following: copy, occurrence: n, keep: .nothing))
    }
    /// The server's reply to the `n`-th COMMIT of a transaction that ran `copy`: committed, but the
    /// client never hears it (the server sends the reply after the commit).
    static func commitReplyLost(_ copy: String, _ n: Int) -> Self {
        .init(.serverToClient, .message("C", containing: "COMMIT", following: copy, occurrence: n, keep: .nothing))
    }
}

@Suite("Connection cut")
struct ConnectionCutTests {
    static let stagedSyncCuts: [CutCase] = [
        .init(cut: .init(.clientToServer, .message("B", following: "stage_batch", occurrence: 2, keep: .half)),
              testDescription: "staged sync, mid-way through the 2nd batch's lines", batches: 1),
        .init(cut: .init(.serverToClient, .message("C", following: "stage_batch", occurrence: 2, keep: .nothing)),
              testDescription: "staged sync, the 2nd batch staged but its reply lost", batches: 2),
    ]

    @Test("a staged sync cut off fails cleanly; the next run stages what is missing, once", arguments: stagedSyncCuts)
    func stagedSyncCut(_ c: CutCase) throws {
        let w = try CutWorld()
        let proxy = try w.proxy(c.cut)
        try w.expectCut(w.stagedSync(via: proxy), by: proxy)
        #expect(try w.staged() == c.batches, "\(proxy.cutsMade)")
        try w.expectSucceeds(w.stagedSync(), "next sync")
        try w.expectSucceeds(w.merge(), "merge")
        try w.expectSucceeds(w.stagedSync(), "final sync")
        try w.faults.expectSettled(on: try w.world.db)
    }

    static let mergeCuts: [CutCase] = [
        .init(cut: .midCopy(CuttingProxy.Cut.ledgerCopy, 2), testDescription: "merge, mid-COPY of the 2nd batch's ledger rows", batches: 1),
        .init(cut: .midCopy(CuttingProxy.Cut.projectionCopy, 1), testDescription: "merge, mid-COPY of the 1st batch's projection rows",
              batches: 0),
        .init(cut: .commitReplyLost(CuttingProxy.Cut.ledgerCopy, 2), testDescription: "merge, the reply to the 2nd batch's ledger COMMIT lost",
              batches: 2, projectionCurrent: false),
        .init(cut: .commitReplyLost(CuttingProxy.Cut.projectionCopy, 1),
              testDescription: "merge, the reply to the 1st batch's projection COMMIT lost", batches: 1),
    ]

    @Test("a one-shot merge cut off fails cleanly; the next merge applies the rest, each batch once", arguments: mergeCuts)
    func mergeCut(_ c: CutCase) throws {
        let w = try CutWorld()
        try w.expectSucceeds(w.stagedSync(), "sync")
        let proxy = try w.proxy(c.cut)
        try w.expectCut(w.merge(via: proxy), by: proxy)
        #expect(try w.merged() == c.batches, "\(proxy.cutsMade)")
        #expect(try w.watermarkIsCurrent == c.projectionCurrent)
        try w.expectSucceeds(w.merge(), "next merge")
        try w.expectSucceeds(w.stagedSync(), "final sync")
        try w.faults.expectSettled(on: try w.world.db)
    }

    static let inProcessCuts: [CutCase] = [
        .init(cut: .midCopy(CuttingProxy.Cut.ledgerCopy, 3), testDescription: "in-process sync, mid-COPY of the 3rd batch's ledger rows",
              batches: 2),
        .init(cut: .commitUnsent(CuttingProxy.Cut.projectionCopy, 2),
              testDescription: "in-process sync, the 2nd batch's projection COMMIT never sent", batches: 2, projectionCurrent: false),
    ]

    @Test("an in-process sync cut off fails cleanly; the next sync repairs the projection and pushes the rest", arguments: inProcessCuts)
    func inProcessSyncCut(_ c: CutCase) throws {
        let w = try CutWorld()
        let proxy = try w.proxy(c.cut)
        try w.expectCut(w.inProcessSync(via: proxy), by: proxy)
        // `batches` counts the batches whose ledger commit happened (1, 10, then 9 valid lines).
        let committed = try w.world.count("SELECT count(*) FROM cardsync.ledger")
        #expect(committed == [0, 1, 11, 20][c.batches], "\(proxy.cutsMade)")
        #expect(try w.watermarkIsCurrent == c.projectionCurrent)
        try w.expectSucceeds(w.inProcessSync(), "next sync")
        try w.faults.expectSettled(on: try w.world.db)
    }

    /// A cut that a retrying sync or the merge service must recover from by itself.
    struct RecoveryCase: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var cut: CuttingProxy.Cut
        var staged = true
    }

    static let retryCuts: [RecoveryCase] = [
        .init(testDescription: "staged sync, its first connection cut mid-startup", cut: .init(.clientToServer, .afterBytes(40))),
        .init(testDescription: "staged sync, mid-way through the 2nd batch's lines",
              cut: .init(.clientToServer, .message("B", following: "stage_batch", occurrence: 2, keep: .half))),
        .init(testDescription: "staged sync, the 2nd batch's reply lost",
              cut: .init(.serverToClient, .message("C", following: "stage_batch", occurrence: 2, keep: .nothing))),
        .init(testDescription: "in-process sync, the reply to the 2nd batch's ledger COMMIT lost",
              cut: .commitReplyLost(CuttingProxy.Cut.ledgerCopy, 2), staged: false),
        .init(testDescription: "in-process sync, the 2nd batch's projection COMMIT never sent",
              cut: .commitUnsent(CuttingProxy.Cut.projectionCopy, 2), staged: false),
    ]

    @Test("sync --retry 3 through a proxy that cuts only its first connection recovers by itself", arguments: retryCuts)
    func retryRecovers(_ c: RecoveryCase) throws {
        let w = try CutWorld()
        let proxy = try w.proxy(c.cut)
        let run = try w.run((c.staged ? w.stagedSync(via: proxy) : w.inProcessSync(via: proxy)) + ["--retry", "3"])
        #expect(proxy.cutsMade.count == 1, "the cut happened: \(proxy.cutsMade)")
        #expect(run.succeeded, "\(run.summary)")
        #expect(run.stderr.contains("retrying"), "it said it retries: \(run.summary)")
        // The next runs finish whatever a failed run left: stage the rest, merge, pull.
        if c.staged {
            try w.expectSucceeds(w.stagedSync(), "next sync")
            try w.expectSucceeds(w.merge(), "merge")
        }
        try w.expectSucceeds(c.staged ? w.stagedSync() : w.inProcessSync(), "final sync")
        try w.faults.expectSettled(on: try w.world.db)
    }

    static let followCuts: [RecoveryCase] = [
        .init(testDescription: "mid-COPY of the 2nd batch's ledger rows", cut: .midCopy(CuttingProxy.Cut.ledgerCopy, 2)),
        .init(testDescription: "the listening connection, mid-notification", cut: .init(.serverToClient, .message("A", keep: .half))),
        .init(testDescription: "the 2nd batch's projection COMMIT never sent", cut: .commitUnsent(CuttingProxy.Cut.projectionCopy, 2)),
    ]

    @Test("merge --follow outlives a cut connection: it reconnects and merges everything staged, then stops on SIGTERM",
          arguments: followCuts)
    func followOutlivesACut(_ c: RecoveryCase) throws {
        let w = try CutWorld()
        let proxy = try w.proxy(c.cut)
        let follow = try CardsyncCLI.start(w.merge(via: proxy) + ["--follow", "--poll-interval", "0.2"], scratch: w.world.directory.url)
        defer { if follow.process.isRunning { follow.kill() } }
        // Staged once the service listens, so that it hears of each batch.
        try Self.waitUntil("merge --follow listens", follow) {
            try w.world.count("SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND query LIKE 'LISTEN%'",
                              [.text(w.roles.bureauRole)]) > 0
        }
        try w.expectSucceeds(w.stagedSync(), "sync")
        let staged = try w.staged()
        try Self.waitUntil("every staged batch is merged", follow) { try w.merged() == staged }
        kill(follow.process.processIdentifier, SIGTERM)
        let stopped = follow.wait()
        #expect(stopped.succeeded, "\(stopped.summary)")
        #expect(stopped.stderr.contains("reconnecting"), "it said it reconnects: \(stopped.summary)")
        #expect(proxy.cutsMade.count == 1, "the cut happened: \(proxy.cutsMade)")
        // Whatever became of the service, a one-shot merge and a sync leave nothing to do.
        try w.expectSucceeds(w.merge(), "merge")
        try w.expectSucceeds(w.stagedSync(), "final sync")
        try w.faults.expectSettled(on: try w.world.db)
    }

    /// Polls `condition` while `process` runs; throws when it stops first (or after a safety timeout).
    static func waitUntil(_ what: String, _ process: CardsyncCLI.Running, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(120)  // a safety net only
        while try !condition() {
            guard process.process.isRunning, ContinuousClock.now < deadline else {
                if process.process.isRunning { process.kill() }
                throw SyncError("not reached: \(what); \(process.wait().summary)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
