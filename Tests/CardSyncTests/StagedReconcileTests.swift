import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

/// A central database restored from an older backup, repaired by `cardsync reconcile --repair`
/// connected with the agency's own role: the lost events are staged again and the bureau's
/// merge applies them, so that the centre ends with every valid outbox event exactly once.
@Suite("Reconcile with an agency's role", .serialized)
struct StagedReconcileTests {
    /// How the bureau's merge meets the repair.
    enum Flow: String, Sendable, CustomTestStringConvertible {
        /// A merger thread applies the re-staged batches while reconcile waits for them (--merge-wait 20).
        case mergeWhileReconcileWaits
        /// Reconcile does not wait; the merge runs afterwards and the next sync pulls what it delivered.
        case mergeAfterRepair
        var testDescription: String {
            self == .mergeWhileReconcileWaits ? "a merger runs while reconcile waits" : "merge after a repair that does not wait"
        }
    }

    /// A copy of a central database (a "backup", later the restored centre), reached as any role.
    struct CentreCopy {
        let uri: String

        func uri(as role: String) -> String {
            precondition(uri.contains("&user=postgres"))
            return uri.replacingOccurrences(of: "&user=postgres", with: "&user=\(role)")
        }

        func connect(as role: String? = nil) throws -> Connection {
            try Connection(conninfo: role.map(uri(as:)) ?? uri)
        }

        /// A copy of `database`, taken while nobody is connected to it (sessions just closed may
        /// linger a moment: retried).
        static func copy(of database: String) throws -> CentreCopy {
            var attempt = 0
            while true {
                do {
                    return CentreCopy(uri: try TestDatabase.freshDatabase(template: database))
                } catch let error as PostgresError where attempt < 100 && "\(error)".contains("being accessed by other users") {
                    attempt += 1
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
        }
    }

    /// The event ids of the valid lines among `lines` (outbox lines as OutboxScript wrote them).
    static func eventIDs(_ lines: ArraySlice<[UInt8]>) -> [UUID] {
        lines.compactMap { line in
            (try? JSONParser.parse(line))?["event_id"]?.stringValue.flatMap(UUID.init(uuidString:))
        }
    }

    static func options(repair: Bool, mergeWait: Duration = .zero) -> ReconcileOptions {
        var options = ReconcileOptions()
        options.repair = repair
        options.mergeWait = mergeWait
        options.lockWait = .seconds(30)
        return options
    }

    @discardableResult
    static func sync(_ queue: QueueDirectory, uri: String) throws -> AgencySyncResult {
        var options = SyncOptions()
        options.mergeWait = .zero
        options.batchSize = 4
        options.lockWait = .seconds(30)
        return try AgencySync(queue: queue, connection: try Connection(conninfo: uri), options: options, logger: .test).run()
    }

    @discardableResult
    static func merge(uri: String) throws -> StagedBatchMerger.Totals {
        try StagedBatchMerger(connection: try Connection(conninfo: uri), projection: try Connection(conninfo: uri),
                              logger: .init(label: "test.staged-merge")).mergeAll()
    }

    static func count(_ connection: Connection, _ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> Int {
        Int(try connection.query(sql, parameters)[0].decode(Int64.self, at: 0))
    }

    static func uuids(_ connection: Connection, _ sql: PostgresQuery, _ parameters: [PostgresValue] = []) throws -> [UUID] {
        try connection.query(sql, parameters).map { try $0.decode(UUID.self, at: 0) }
    }

    /// Every application, comparably (ids, status, version, hold, card, form).
    static func applications(_ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT application_id::text || ' ' || owning_agency || ' ' || status || ' v' || version || ' '
                   || coalesce(held_status, '-') || ' ' || coalesce(card_number, '-') || ' ' || form::text
            FROM cardsync.applications ORDER BY application_id
            """).map { try $0.decode(String.self, at: 0) }
    }

    @Test("a centre restored from an older backup: reconcile with the agency's role re-stages what was lost, the merge applies it once, the inbox is complete",
          arguments: [Flow.mergeWhileReconcileWaits, .mergeAfterRepair])
    func restoredCentre(flow: Flow) throws {
        let w = try IsolationWorld()
        let queue = try w.world.queue(w.agencyA)
        let queueB = try w.world.queue(w.agencyB)
        let script = OutboxScript(queue)
        let scriptB = OutboxScript(queueB, firstChild: 700)

        // Before the backup: events staged and merged, decisions pulled.
        let apps = try (0..<6).map { _ in try script.submit() }
        for app in apps.prefix(3) { try script.verify(app) }
        try script.appendRaw(Array("not json before the backup".utf8))
        for _ in 0..<2 { try scriptB.submit() }
        try Self.sync(queue, uri: w.uri(as: w.roleA))
        try Self.sync(queueB, uri: w.uri(as: w.roleB))
        try Self.merge(uri: w.uri(as: w.bureauRole))
        _ = try BureauRecorder(connection: try w.connect(as: w.bureauRole), logger: .test)
            .record(.approved, applications: Array(apps.prefix(2)), data: { _ in [:] })
        #expect(try Self.sync(queue, uri: w.uri(as: w.roleA)).pulled == 2)
        let beforeBackup = script.lines.count

        // The backup: two copies (the restored centre, and a reference that loses nothing of
        // the agency's), taken with every connection closed, and the queue as it was then.
        w.world.disconnect()
        let restored = try CentreCopy.copy(of: w.world.databaseName)
        let reference = try CentreCopy.copy(of: w.world.databaseName)
        let referenceQueue = try QueueFiles.copy(queue, to: w.world.path("reference-queue"))

        // After the backup: more events (a duplicate submission among them: a conflict and a
        // conflict_opened for the agency), staged and merged; decisions the restore will lose.
        let more = try (0..<4).map { _ in try script.submit() }
        for app in apps.suffix(3) { try script.verify(app) }
        let duplicate = try script.submit(child: 0)
        try script.withdraw(more[3])
        try script.appendRaw(Array("not json after the backup".utf8))
        try Self.sync(queue, uri: w.uri(as: w.roleA))
        try Self.merge(uri: w.uri(as: w.bureauRole))
        _ = try BureauRecorder(connection: try w.connect(as: w.bureauRole), logger: .test)
            .record(.approved, applications: [apps[3], apps[4]], data: { _ in [:] })
        let pulled = try Self.sync(queue, uri: w.uri(as: w.roleA))
        #expect(pulled.pulled >= 3, "two approvals and the duplicate's conflict_opened")
        let inboxBeforeRestore = try QueueFiles.inbox(queue)
        let phase1Events = Self.eventIDs(script.lines.prefix(beforeBackup))
        let phase2Events = Self.eventIDs(script.lines.dropFirst(beforeBackup))
        #expect(phase2Events.count == script.lines.count - beforeBackup - 1)
        let allEvents = phase1Events + phase2Events
        #expect(try Self.count(try w.world.db, "SELECT count(*) FROM cardsync.ledger WHERE agency_code = $1",
                               [.text(w.agencyA.code)]) == allEvents.count)
        w.world.disconnect()

        // The centre is restored: from now on the agency talks to the copy.
        let owner = try restored.connect()
        let agencyURI = restored.uri(as: w.roleA)
        let bureauURI = restored.uri(as: w.bureauRole)
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.ledger WHERE agency_code = $1", [.text(w.agencyA.code)])
                == phase1Events.count, "the restored centre lacks what came after the backup")

        let found = try AgencyReconcile(queue: queue, connection: try Connection(conninfo: agencyURI),
                                        options: Self.options(repair: false), logger: .test).run()
        #expect(Set(found.eventsMissingCentrally.map(\.eventID)) == Set(phase2Events), "\(found.json())")
        #expect(found.eventsOnlyCentral.isEmpty && found.decisionsMissingAtAgency.isEmpty && found.eventsNotYetSynced == 0)
        #expect(found.decisionsUnknownCentrally.count == pulled.pulled, "the lost decisions are reported: \(found.json())")

        // The repair, with the agency's role.
        let repaired: AgencyReconcileResult
        switch flow {
        case .mergeWhileReconcileWaits:
            let stop = StopFlag()
            let errors = StagedErrorBox()
            let (ledgerSide, projectionSide) = (Handoff(try Connection(conninfo: bureauURI)), Handoff(try Connection(conninfo: bureauURI)))
            Thread {
                let merger = StagedBatchMerger(connection: ledgerSide.take(), projection: projectionSide.take(),
                                               logger: .init(label: "test.staged-merge"))
                while !stop.isSet {
                    do { try merger.mergeAll() } catch { errors.add("\(error)") }
                    Thread.sleep(forTimeInterval: 0.02)
                }
                stop.finish()
            }.start()
            defer { stop.set(); stop.waitFinished() }
            repaired = try AgencyReconcile(queue: queue, connection: try Connection(conninfo: agencyURI),
                                           options: Self.options(repair: true, mergeWait: .seconds(20)), logger: .test).run()
            #expect(errors.all.isEmpty, "\(errors.all)")
            #expect(repaired.pushed?.accepted == phase2Events.count, "reconcile saw its re-staged events merged: \(repaired.json())")
            // The re-pushed duplicate opens its conflict again, and its notification carries the
            // event_id the inbox already holds: nothing to pull.
            #expect(repaired.pulled == 0, "\(repaired.json())")
        case .mergeAfterRepair:
            repaired = try AgencyReconcile(queue: queue, connection: try Connection(conninfo: agencyURI),
                                           options: Self.options(repair: true), logger: .test).run()
            #expect(repaired.pushed?.accepted == 0, "nothing merged yet: \(repaired.json())")
            #expect(try Self.count(owner, "SELECT coalesce(sum(line_count), 0)::int8 FROM cardsync.staged_batches WHERE merged_at IS NULL")
                    == phase2Events.count, "the re-pushed events wait staged")
            let merged = try Self.merge(uri: bureauURI)
            #expect(merged.merged.accepted == phase2Events.count)
            let next = try Self.sync(queue, uri: agencyURI)
            #expect(next.pushed == phase2Events.count, "the next sync reports what the merge made of the repair")
            #expect(next.repushedAfterRestore == 0 && next.unmerged == 0)
            #expect(next.pulled == 0, "the re-opened conflict's notification is the one the inbox holds")
        }

        // Every valid outbox event exactly once, each staged batch merged once.
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.staged_lines") == 0)
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.staged_batches WHERE merged_at IS NULL") == 0)
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.refused_lines") == 0)
        let ledgerA = try Self.uuids(owner, "SELECT event_id FROM cardsync.ledger WHERE agency_code = $1", [.text(w.agencyA.code)])
        #expect(ledgerA.count == allEvents.count && Set(ledgerA) == Set(allEvents))
        #expect(try Self.count(owner, "SELECT count(*) - count(DISTINCT event_id) FROM cardsync.ledger") == 0)
        #expect(try Self.count(owner, "SELECT coalesce(sum(accepted), 0)::int8 FROM cardsync.staged_batches WHERE agency_code = $1",
                               [.text(w.agencyA.code)]) == allEvents.count)
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.ledger WHERE agency_code = $1", [.text(w.agencyB.code)]) == 2)
        let verify = try ProjectionVerifier(connection: owner).verify()
        #expect(verify.isClean, "db verify: \(verify.text)")
        #expect(verify.eventsReplayed == (try Self.count(owner, "SELECT count(*) FROM cardsync.ledger")))
        let held = try owner.query("SELECT status FROM cardsync.applications WHERE application_id = $1", [.uuid(duplicate)])
        #expect(try held.first?.decode(String.self, at: 0) == "on_hold", "the re-pushed duplicate is held again")

        // The inbox: only appended to, once each, and it holds every delivery of the restored centre.
        let inbox = try QueueFiles.inbox(queue)
        QueueFiles.expectNoDuplicates(inbox)
        #expect(Array(inbox.prefix(inboxBeforeRestore.count)) == inboxBeforeRestore, "the inbox is only appended to")
        let delivered = try Self.uuids(owner, """
            SELECT l.event_id FROM cardsync.deliveries d JOIN cardsync.ledger l USING (ledger_id) WHERE d.agency_code = $1
            """, [.text(w.agencyA.code)])
        #expect(Set(delivered).isSubset(of: Set(inbox.map(\.eventID))), "the inbox holds every delivery")

        // The same centre as one that never lost the agency's events (the bureau's lost
        // decisions aside): the reference copy gets the same events by an ordinary staged sync.
        for line in script.lines.dropFirst(beforeBackup) {
            let handle = try FileHandle(forWritingTo: referenceQueue.outboxFile)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line + [0x0A]))
            try handle.close()
        }
        try Self.sync(referenceQueue, uri: reference.uri(as: w.roleA))
        try Self.merge(uri: reference.uri(as: w.bureauRole))
        try Self.sync(referenceQueue, uri: reference.uri(as: w.roleA))
        let referenceOwner = try reference.connect()
        #expect(try Self.applications(owner) == (try Self.applications(referenceOwner)))
        #expect(Set(try Self.uuids(referenceOwner, "SELECT event_id FROM cardsync.ledger WHERE agency_code = $1",
                                   [.text(w.agencyA.code)])) == Set(allEvents))

        // Reconcile again: nothing missing on either side; only the lost decisions are reported.
        let again = try AgencyReconcile(queue: queue, connection: try Connection(conninfo: agencyURI),
                                        options: Self.options(repair: false), logger: .test).run()
        #expect(again.eventsMissingCentrally.isEmpty && again.decisionsMissingAtAgency.isEmpty, "\(again.json())")
        #expect(again.eventsOnlyCentral.isEmpty && again.eventsNotYetSynced == 0 && again.decisionsNotYetPulled == 0)
        let lost = Set(inbox.map(\.eventID)).subtracting(delivered)
        #expect(Set(again.decisionsUnknownCentrally.map(\.eventID)) == lost)
        // Only the two approvals are lost: the conflict notification is the centre's again.
        let inboxConflicts = Set(inbox.filter { $0.type == .conflictOpened }.map(\.eventID))
        #expect(inboxConflicts.count == 1 && inboxConflicts.isSubset(of: Set(delivered)))
        #expect(lost.count == pulled.pulled - 1)
        let settled = try Self.sync(queue, uri: agencyURI)
        #expect(settled.pushed == 0 && settled.pulled == 0 && settled.quarantined == 0 && settled.repushedAfterRestore == 0)
        #expect(try Self.count(owner, "SELECT count(*) FROM cardsync.staged_lines") == 0, "a settled sync stages nothing")
    }
}

/// Errors a background thread met.
final class StagedErrorBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var errors: [String] = []
    func add(_ e: String) { lock.lock(); errors.append(e); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return errors }
}
