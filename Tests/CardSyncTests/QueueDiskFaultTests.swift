import CardCore
import EventFixtures
import Foundation
import Testing
import TestSupport
@testable import CardSync

/// A queue directory whose disk fills up while sync writes one of its own files: the run fails
/// with exit 1 and a message naming the file and "no space left", loses nothing and leaves no
/// torn line, and the next run, with space back, finishes the work exactly once.
///
/// The queue lives on a small tmpfs; before the failing run a filler file takes every free
/// block, so each file can grow only within the unused tail of its last block. Where a case
/// needs its write to fail part way (a torn line is the danger), it writes more than that tail.
@Suite("Queue disk full", .serialized)
struct QueueDiskFaultTests {
    enum Target: String, CaseIterable, CustomTestStringConvertible {
        /// Pulled decisions do not fit the inbox (after the push had nothing to do).
        case inbox
        /// A batch's quarantine lines do not fit, after the batch was merged.
        case quarantine
        /// The checkpoint after a merged batch (its quarantine line fit the file's last block).
        case checkpointAfterPush
        /// The checkpoint after a page of decisions (which fit the inbox's last block).
        case checkpointAfterPull

        var testDescription: String { rawValue }
    }

    @Test("disk full while sync writes", arguments: Target.allCases)
    func diskFull(_ target: Target) throws {
        let world = try SyncWorld()
        let q = try DiskFaultQueue(world)
        defer { q.fs.unmount() }
        let queue = q.queue

        // What the run will have to write, and the file that cannot take it.
        let failing: URL
        switch target {
        case .inbox:
            // Two decisions for each of 27 applications: several KiB, more than a block.
            try q.decide(.approved, q.apps.dropFirst(3))
            try q.decide(.cardProduced, q.apps.dropFirst(3))
            try #require(q.slack(queue.inboxFile) < 54 * 150, "the decisions must not fit the inbox's last block")
            failing = queue.inboxFile
        case .quarantine:
            for _ in 0..<3 { try q.script.submit() }
            // Its quarantine line is larger than a block: the write cannot fit the tail.
            try q.addInvalid(Array(repeating: UInt8(ascii: "x"), count: 6000))
            try q.script.submit()
            try #require(q.slack(queue.quarantineFile) < 6000, "the quarantine line must not fit the file's last block")
            failing = queue.quarantineFile
        case .checkpointAfterPush:
            for _ in 0..<3 { try q.script.submit() }
            try q.addInvalid(Array("{\"seq\": 40, \"torn".utf8))
            try #require(q.slack(queue.quarantineFile) > 1024, "the quarantine line must fit the file's last block")
            failing = queue.stateFile
        case .checkpointAfterPull:
            try q.decide(.approved, q.apps.dropFirst(3).prefix(2))
            try #require(q.slack(queue.inboxFile) > 1024, "the two inbox lines must fit the file's last block")
            failing = queue.stateFile
        }
        try q.fs.fill()
        try #require(q.fs.freeBlocks == 0, "the filler must take every free block")
        let before = q.image()

        let failed = try q.cli(queue)
        #expect(failed.status == 1, "exit status \(failed.status); stderr: \(failed.stderr)")
        #expect(failed.stderr.contains(failing.path), "the message must name \(failing.lastPathComponent): \(failed.stderr)")
        #expect(failed.stderr.contains("No space left on device"), "the message must say why: \(failed.stderr)")
        #expect(failed.stderr.contains("free space"), "the message must say what to do: \(failed.stderr)")
        try q.expectNothingLost(since: before)

        // Still full, a second run fails the same way and changes nothing either.
        let again = try q.cli(queue)
        #expect(again.status == 1, "exit status \(again.status); stderr: \(again.stderr)")
        try q.expectNothingLost(since: before)

        try q.fs.free()
        let rerun = try q.cli(queue)
        #expect(rerun.status == 0, "exit status \(rerun.status); stderr: \(rerun.stderr)")
        try q.expectComplete()
    }

    /// The inbox and quarantine writers on their own: a batch that does not fit leaves the file
    /// exactly as it was, so that no reader, sync or counter software, ever sees part of it.
    @Test("a batch that does not fit leaves the inbox and the quarantine as they were")
    func writersLeaveNoPartOfABatch() throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-enospc")
        let fs = try SmallFilesystem(at: directory.url.appendingPathComponent("fs"), bytes: 64 * 1024)
        // Unmounted before the directory is removed (which must not wait for ARC to decide).
        defer { fs.unmount(); directory.remove() }
        let inboxURL = fs.mountPoint.appendingPathComponent("inbox.jsonl")
        let quarantineURL = fs.mountPoint.appendingPathComponent("quarantine.jsonl")
        let inbox = try InboxWriter(url: inboxURL)
        let quarantine = try QuarantineWriter(url: quarantineURL)
        defer { inbox.close(); quarantine.close() }
        let entry = { (n: Int) in
            InboxLine(ledgerID: Int64(n), eventID: UUID(), applicationID: UUID(), type: .approved,
                      occurredAt: SyncFixture.at(minutes: n), data: [:])
        }
        inbox.append(entry(1))
        quarantine.append(lineNumber: 1, raw: Array("not json".utf8), reason: QuarantineReason(.malformedJSON, "not JSON"))
        try inbox.flush()
        try quarantine.flush()
        let inboxBefore = Data(QueueFiles.bytes(inboxURL)), quarantineBefore = Data(QueueFiles.bytes(quarantineURL))
        try fs.fill()

        for n in 2..<60 { inbox.append(entry(n)) }
        for n in 2..<4 {
            quarantine.append(lineNumber: n, raw: Array(repeating: UInt8(ascii: "x"), count: 5000),
                              reason: QuarantineReason(.malformedJSON, "not JSON"))
        }
        #expect(throws: QueueError.self) { try inbox.flush() }
        #expect(throws: QueueError.self) { try quarantine.flush() }
        #expect(Data(QueueFiles.bytes(inboxURL)) == inboxBefore)
        #expect(Data(QueueFiles.bytes(quarantineURL)) == quarantineBefore)
        #expect(try inbox.size() == Int64(inboxBefore.count))
    }
}
