import CardCore
import Foundation
import Testing
import TestSupport
@testable import CardSync

// Nested in QueueDiskFaultTests so that a filter on that name runs these cases too.
extension QueueDiskFaultTests {
    /// A queue directory that is read-only when sync comes to write one of its own files: exit 1,
    /// a message naming the file and "read-only", nothing lost, and the next run, writable again,
    /// finishes the work exactly once. (As root, chmod would not stop a write: the mount does.)
    ///
    /// Linux refuses to make a mount read-only while a file on it is open for writing (EBUSY), and
    /// sync holds its lock file and quarantine.jsonl open from its start. So the queue sits on a
    /// tmpfs and sync reaches it through a bind mount made read-only before the run; the files a
    /// case needs writable until its target is written are absolute symlinks that lead through the
    /// tmpfs's own, writable mount. Each case then fails at the first write of its file: the
    /// quarantine when it is opened, before any merge; the checkpoint after a batch was merged or
    /// after decisions were appended to the inbox; the inbox after the push. With nothing symlinked,
    /// sync stops at the lock file.
    @Suite("Queue read-only", .serialized)
    struct ReadOnly {
        enum Target: String, CaseIterable, CustomTestStringConvertible {
            /// The whole directory read-only: sync stops at its lock file, before anything else.
            case lock
            case quarantine
            case checkpointAfterPush
            case inbox
            case checkpointAfterPull

            var testDescription: String { rawValue }

            /// Files that stay writable (symlinked out of the read-only view).
            var writable: [String] {
                switch self {
                case .lock: []
                case .quarantine: [".cardsync.lock"]
                case .checkpointAfterPush, .inbox: [".cardsync.lock", "quarantine.jsonl"]
                case .checkpointAfterPull: [".cardsync.lock", "quarantine.jsonl", "inbox.jsonl"]
                }
            }
        }

        @Test("read-only queue directory while sync writes", arguments: Target.allCases)
        func readOnly(_ target: Target) throws {
            let world = try SyncWorld()
            let q = try DiskFaultQueue(world) { queue in
                let outside = queue.url.deletingLastPathComponent().appendingPathComponent("writable")
                try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
                for name in target.writable {
                    try FileManager.default.createSymbolicLink(at: queue.url.appendingPathComponent(name),
                                                               withDestinationURL: outside.appendingPathComponent(name))
                }
            }
            defer { q.fs.unmount() }
            let view = world.path("view")
            try q.fs.bind(q.queue.url, at: view)
            let seen = QueueDirectory(view)

            let failing: URL
            switch target {
            case .lock, .quarantine:
                for _ in 0..<3 { try q.script.submit() }
                try q.addInvalid(Array("{\"seq\": 40".utf8))
                failing = target == .lock ? seen.lockFile : seen.quarantineFile
            case .checkpointAfterPush:
                for _ in 0..<3 { try q.script.submit() }
                try q.addInvalid(Array("{\"seq\": 40".utf8))
                failing = seen.stateFile
            case .inbox:
                try q.decide(.approved, q.apps.dropFirst(3))
                failing = seen.inboxFile
            case .checkpointAfterPull:
                try q.decide(.approved, q.apps.dropFirst(3))
                failing = seen.stateFile
            }
            try q.fs.setReadOnly(view, true)
            let before = q.image()

            let failed = try q.cli(seen)
            #expect(failed.status == 1, "exit status \(failed.status); stderr: \(failed.stderr)")
            #expect(failed.stderr.contains(failing.path), "the message must name \(failing.lastPathComponent): \(failed.stderr)")
            #expect(failed.stderr.contains("Read-only file system"), "the message must say why: \(failed.stderr)")
            #expect(failed.stderr.contains("make it writable"), "the message must say what to do: \(failed.stderr)")
            try q.expectNothingLost(since: before)

            try q.fs.setReadOnly(view, false)
            let rerun = try q.cli(seen)
            #expect(rerun.status == 0, "exit status \(rerun.status); stderr: \(rerun.stderr)")
            try q.expectComplete()
        }
    }
}
