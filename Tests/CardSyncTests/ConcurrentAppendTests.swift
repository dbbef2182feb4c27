import CardCore
import EventFixtures
import Foundation
import Testing
import TestSupport
@testable import CardSync

/// Counter software appends to the outbox while sync runs. It follows the spec (whole lines,
/// O_APPEND, fsync) but does not take the queue lock, and it writes each line in two write()
/// calls with a pause between, so a sync may find the last line torn: "an append still in
/// progress ... neither synced nor quarantined until it is complete" (queue-format.md).
@Suite("Concurrent outbox appends", .serialized)
struct ConcurrentAppendTests {
    @Test("syncs while counter software appends: no line skipped, none read twice")
    func syncsWhileAppending() throws {
        let isolation = try IsolationWorld()
        let world = isolation.world
        let agency = isolation.agencyA
        let queue = try world.queue(agency)
        let writer = CounterWriter(queue.outboxFile)
        let agencyURI = isolation.uri(as: isolation.roleA)
        // Synced first by the owner's CLI runs, so that this queue's first batch is read ahead,
        // without its lock, while the other one merges (one worker reads the next queue ahead).
        let other = try world.queue(isolation.agencyB)
        let otherScript = OutboxScript(other, firstChild: 100_000)
        // Four kinds of sync in turn, so that every reading path meets the torn last line: in
        // process as the owner (small batches: the next one is read while this one merges), in
        // process as the agency's role (staged, merged by the next owner sync), the CLI as the
        // owner (after the other queue), the CLI as the agency's role, then the bureau's merge.
        // Returns whether everything synced is merged by now.
        func syncOnce(_ round: Int) throws -> Bool {
            switch round % 4 {
            case 0, 1:
                var options = SyncOptions()
                options.batchSize = round % 4 == 0 ? 5 : 16
                options.mergeWait = .zero
                let owner = round % 4 == 0
                _ = try AgencySync(queue: queue, connection: owner ? try world.connect() : try isolation.connect(as: isolation.roleA),
                                   projection: owner ? try world.connect() : nil, options: options, logger: .test).run()
                return owner
            default:
                let asAgency = round % 4 == 3
                if !asAgency { try otherScript.submit() }
                let run = try CardsyncCLI.run(["sync"] + (asAgency ? [] : [other.path])
                                              + [queue.path, "--database", asAgency ? agencyURI : world.uri,
                                                 "--batch-size", asAgency ? "7" : "16", "--merge-wait", "0"],
                                              scratch: world.directory.url)
                #expect(run.status == 0, "round \(round): \(run.stderr)")
                if asAgency { try isolation.merge() }
                return true
            }
        }

        writer.start()
        // Also when a sync throws: the writer must not be left waiting mid-line.
        defer { writer.stopAndWait() }
        var roundsTorn = 0
        for round in 0..<32 {
            // Fifteen more lines while this sync runs; the writer then waits in the middle of
            // the next line, so a sync that outlasts them finds the last line torn.
            writer.allow(15)
            let merged = try syncOnce(round)
            if try Self.expectCheckpointConsistent(queue, writer: writer, world: world, agency: agency.code,
                                                   merged: merged, round: round) {
                roundsTorn += 1
            }
        }
        writer.stopAndWait()
        try #require(writer.failure == nil, "the counter writer failed: \(writer.failure!)")
        #expect(try syncOnce(0))

        // The file holds exactly what the writer wrote, and the centre exactly its valid lines.
        let written = writer.linesWritten
        let fileLines = QueueFiles.bytes(queue.outboxFile).split(separator: 0x0A, omittingEmptySubsequences: false)
        #expect(fileLines.last?.isEmpty == true, "the outbox must end with a complete line")
        let sameLines = fileLines.dropLast().map(Array.init) == written.map(\.bytes)
        #expect(sameLines, "the outbox holds \(fileLines.count - 1) lines, the writer wrote \(written.count)")
        let expectedLedger = written.filter(\.valid).map { "\($0.seq) \($0.eventID)" }
        let ledger = try world.texts("""
            SELECT seq || ' ' || event_id FROM cardsync.ledger WHERE origin = 'agency' AND agency_code = $1 ORDER BY seq
            """, [.text(agency.code)])
        #expect(ledger.count == expectedLedger.count)
        #expect(ledger == expectedLedger, "first difference at \((0..<min(ledger.count, expectedLedger.count)).first { ledger[$0] != expectedLedger[$0] } ?? -1)")
        let expectedQuarantine = written.enumerated().filter { !$0.element.valid }
            .map { "\($0.offset + 1) bad_uuid \(Data($0.element.bytes).base64EncodedString())" }
        #expect(try QueueFiles.quarantineSummary(queue) == expectedQuarantine)
        let checkpoint = try #require(try queue.loadCheckpoint())
        #expect(checkpoint.outboxLine == written.count)
        #expect(checkpoint.outboxOffset == Int64(QueueFiles.bytes(queue.outboxFile).count))
        #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE agency_code = $1",
                                [.text(isolation.agencyB.code)]) == otherScript.lines.count)
        try world.expectVerifyClean()
        // Not an assertion: how much the run overlapped, for whoever reads the log.
        print("ConcurrentAppendTests: 33 syncs, \(written.count) lines, \(roundsTorn) syncs were followed by a torn last line")
    }

    /// After every sync: the checkpoint is at the end of a complete line and counts the lines
    /// before it; the quarantine holds exactly the invalid lines before it, and once nothing is
    /// left staged, the ledger exactly the valid ones.
    /// Returns whether the outbox ended with a torn line by then.
    @discardableResult
    static func expectCheckpointConsistent(_ queue: QueueDirectory, writer: CounterWriter, world: SyncWorld,
                                           agency: String, merged: Bool, round: Int) throws -> Bool {
        let checkpoint = try #require(try queue.loadCheckpoint())
        let file = QueueFiles.bytes(queue.outboxFile)
        let prefix = file.prefix(Int(checkpoint.outboxOffset))
        #expect(prefix.isEmpty || prefix.last == 0x0A, "round \(round): the checkpoint is inside a line")
        #expect(prefix.count(where: { $0 == 0x0A }) == checkpoint.outboxLine, "round \(round): checkpoint line number")
        let lines = writer.linesWritten.prefix(checkpoint.outboxLine)
        let valid = lines.filter(\.valid).count
        #expect(try QueueFiles.quarantine(queue).count == lines.count - valid, "round \(round): quarantine")
        if merged {
            let pushed = try world.count("SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency' AND agency_code = $1",
                                         [.text(agency)])
            #expect(pushed == valid, "round \(round): \(pushed) events in the ledger for \(valid) valid lines synced")
        }
        return file.last.map { $0 != 0x0A } ?? false
    }

    @Test("a final line without a newline is neither synced nor quarantined, and the checkpoint stays before it")
    func finalLineWithoutNewline() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        let script = OutboxScript(queue)
        for _ in 0..<3 { try script.submit() }
        let complete = Int64(QueueFiles.bytes(queue.outboxFile).count)
        let app = UUID(), eventID = UUID()
        let line = JSONWriter.bytes(SyncFixture.event("submitted", app: app, at: SyncFixture.at(minutes: 10),
                                                      data: SyncFixture.submittedData(child: 99), eventID: eventID)
            .setting("seq", to: .int(4)))

        // The append goes on in three steps: half the object, the rest of it without the
        // newline (a whole JSON object, still not a line), then the newline.
        let steps = [Array(line.prefix(line.count / 2)), Array(line.dropFirst(line.count / 2)), [UInt8(0x0A)]]
        for (step, bytes) in steps.enumerated() {
            let file = try FileHandle(forWritingTo: queue.outboxFile)
            try file.seekToEnd()
            try file.write(contentsOf: Data(bytes))
            try file.close()
            let result = try world.sync(queue)
            let done = step == steps.count - 1
            #expect(result.pushed == (step == 0 ? 3 : done ? 1 : 0), "step \(step)")
            #expect(result.quarantined == 0, "step \(step)")
            let checkpoint = try #require(try queue.loadCheckpoint())
            #expect(checkpoint.outboxOffset == (done ? complete + Int64(line.count + 1) : complete), "step \(step)")
            #expect(checkpoint.outboxLine == (done ? 4 : 3), "step \(step)")
            #expect(try world.count("SELECT count(*) FROM cardsync.ledger WHERE event_id = $1 AND seq = 4",
                                    [.uuid(eventID)]) == (done ? 1 : 0), "step \(step)")
        }
        #expect(try QueueFiles.quarantine(queue).isEmpty)
        try world.expectVerifyClean()
    }
}

/// Counter software on its own thread: O_APPEND, each line in two write() calls with a pause
/// between (the cut moves: after the opening brace, mid-line, inside a multi-byte character, just
/// before the newline), fsync after each line. It completes only as many lines as `allow` has
/// granted, waiting in the middle of the next one: the test decides how much is written per
/// sync, whatever the machine's speed, and each sync ends. Every 20th line has a bad event_id.
final class CounterWriter: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `condition`.
    struct Line {
        var bytes: [UInt8]
        var seq: Int64
        var eventID: String
        var valid: Bool
    }

    private let url: URL
    private let condition = NSCondition()
    private var written: [Line] = []
    private var allowed = 0
    private var stopped = false
    private var finished = false
    private var error: (any Error)?

    init(_ url: URL) { self.url = url }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        return body()
    }

    func start() { Thread { self.run() }.start() }
    func allow(_ lines: Int) { locked { allowed += lines } }
    var linesWritten: [Line] { locked { written } }
    var failure: (any Error)? { locked { error } }

    /// Lets the writer finish the line it is in, and waits until it has.
    func stopAndWait() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    static func line(_ i: Int) -> Line {
        let seq = Int64(i + 1)
        let valid = i % 20 != 19
        let eventID = valid ? UUID().uuidString.lowercased() : "not-a-uuid-\(i)"
        let value = SyncFixture.event("submitted", app: UUID(), at: SyncFixture.at(minutes: i % 2000),
                                      data: SyncFixture.submittedData(child: i))
            .setting("event_id", to: .string(eventID)).setting("seq", to: .int(seq))
        return Line(bytes: JSONWriter.bytes(value), seq: seq, eventID: eventID, valid: valid)
    }

    private func run() {
        defer { locked { finished = true } }
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { return fail() }
        defer { close(fd) }
        for i in 0... {
            if locked({ stopped }) { return }
            let line = Self.line(i)
            let whole = line.bytes + [0x0A]
            let cut: Int
            switch i % 4 {
            case 0: cut = whole.count - 1
            case 1: cut = 1
            case 2: cut = (whole.firstIndex { $0 >= 0xC0 } ?? whole.count / 2) + 1
            default: cut = whole.count / 2
            }
            // The line counts as written once its first half is in the file: a sync may see it.
            locked { written.append(line) }
            guard Self.writeAll(fd, whole[..<cut]) else { return fail() }
            condition.lock()
            while allowed <= i && !stopped { condition.wait() }
            condition.unlock()
            usleep(UInt32(1000 + i % 5 * 1000))
            guard Self.writeAll(fd, whole[cut...]), fsync(fd) == 0 else { return fail() }
            usleep(UInt32(i % 7 * 1000))
        }
    }

    private func fail() { let e = errno; locked { error = POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO) } }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            let n = rest.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            rest = rest.dropFirst(n)
        }
        return true
    }
}
