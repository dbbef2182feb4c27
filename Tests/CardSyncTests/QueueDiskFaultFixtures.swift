import CardCore
import EventFixtures
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// Helpers for QueueDiskFaultTests and QueueReadOnlyTests: a small tmpfs to put a queue on, and
// a queue on it that already holds inbox and quarantine lines, with what its files and the
// centre must hold at the end.

/// A tmpfs of a few hundred KiB mounted on a fresh directory, plus bind mounts of directories
/// inside it. Mounting needs root (these tests and CI run as root); when `mount` is refused the
/// test fails and says so instead of running without the fault. `unmount()` runs in the test's
/// `defer` and again on deinit, innermost mount first; a mount kept busy is detached lazily so
/// that no mount outlives the test.
final class SmallFilesystem: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let mountPoint: URL
    private var mounts: [URL] = []

    struct MountFailed: Error, CustomStringConvertible {
        var description: String
    }

    init(at url: URL, bytes: Int) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        mountPoint = url
        try Self.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "tmpfs", url.path])
        mounts.append(url)
    }

    deinit { unmount() }

    /// `directory` (inside this filesystem) seen at `view` through a bind mount, still writable.
    func bind(_ directory: URL, at view: URL) throws {
        try FileManager.default.createDirectory(at: view, withIntermediateDirectories: true)
        try Self.run("/usr/bin/mount", ["--bind", directory.path, view.path])
        mounts.append(view)
    }

    /// Makes a bind mount read-only or writable again. Only that mount changes: files reached
    /// through the tmpfs's own mount point stay writable.
    func setReadOnly(_ view: URL, _ readOnly: Bool) throws {
        try Self.run("/usr/bin/mount", ["-o", "remount,bind,\(readOnly ? "ro" : "rw")", view.path])
    }

    var filler: URL { mountPoint.appendingPathComponent("filler") }

    /// Takes every free block with a filler file: it is written until the kernel says ENOSPC.
    /// The last block of each other file keeps its unused tail, as on any filesystem, so a
    /// write bigger than that tail fails part way.
    func fill() throws {
        let fd = open(filler.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x2E, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && errno == ENOSPC else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            return
        }
    }

    /// Blocks left for writing (0 once `fill()` ran).
    var freeBlocks: UInt64 {
        var st = statvfs()
        guard statvfs(mountPoint.path, &st) == 0 else { return .max }
        return UInt64(st.f_bavail)
    }

    /// Gives the space back.
    func free() throws { try FileManager.default.removeItem(at: filler) }

    func unmount() {
        for url in mounts.reversed() where (try? Self.run("/usr/bin/umount", [url.path])) == nil {
            try? Self.run("/usr/bin/umount", ["-l", url.path])
        }
        mounts = []
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MountFailed(description: "\(tool) \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): \(String(decoding: message, as: UTF8.self)); these tests need root to mount a tmpfs")
        }
    }
}

/// One agency's queue on a small tmpfs, synced once with room to spare: 30 applications, one
/// quarantined line, 3 decisions in the inbox. Knows every outbox line it wrote, so the final
/// state can be compared with the outbox exactly.
final class DiskFaultQueue: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let world: SyncWorld
    let fs: SmallFilesystem
    let queue: QueueDirectory
    let script: OutboxScript
    private(set) var apps: [UUID] = []
    /// Outbox line numbers written invalid on purpose, with their bytes.
    private(set) var invalid: [Int: [UInt8]] = [:]

    /// `prepare` runs on the empty queue directory before the first sync (symlinks, for the
    /// read-only cases).
    init(_ world: SyncWorld, prepare: (QueueDirectory) throws -> Void = { _ in }) throws {
        self.world = world
        fs = try SmallFilesystem(at: world.path("fs"), bytes: 512 * 1024)
        queue = try QueueDirectory.initialize(at: fs.mountPoint.appendingPathComponent("queue"), agency: SyncFixture.agency)
        script = OutboxScript(queue)
        try prepare(queue)
        for _ in 0..<30 { apps.append(try script.submit()) }
        try addInvalid(Array("not json at all".utf8))
        try world.sync(queue)
        try decide(.approved, apps.prefix(3))
        try world.sync(queue)
        #expect(try QueueFiles.inbox(queue).count == 3)
        #expect(try QueueFiles.quarantine(queue).count == 1)
    }

    func addInvalid(_ raw: [UInt8]) throws {
        try script.appendRaw(raw)
        invalid[script.lines.count] = raw
    }

    func decide(_ type: EventType, _ apps: some Collection<UUID>) throws {
        _ = try BureauRecorder(connection: try world.db, logger: .test).record(type, applications: Array(apps), data: { _ in
            type == .cardProduced ? ["card_number": "A12345678"] : [:]
        })
    }

    /// Bytes free in the last block of a file: what a write can still put there on a full disk.
    func slack(_ url: URL) -> Int {
        let block = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = QueueFiles.bytes(url).count
        return size % block == 0 ? 0 : block - size % block
    }

    /// `cardsync sync DIR` with the real executable.
    func cli(_ directory: QueueDirectory) throws -> CardsyncCLI.Output {
        try CardsyncCLI.run(["sync", directory.path, "--database", world.uri], scratch: world.directory.url)
    }

    /// The queue's files before a failing run.
    struct Image {
        // Data, not [UInt8]: a failed comparison then prints sizes, not every byte.
        var outbox, inbox, quarantine, state: Data
    }

    func image() -> Image {
        Image(outbox: Data(QueueFiles.bytes(queue.outboxFile)), inbox: Data(QueueFiles.bytes(queue.inboxFile)),
              quarantine: Data(QueueFiles.bytes(queue.quarantineFile)), state: Data(QueueFiles.bytes(queue.stateFile)))
    }

    /// After a failed run: the outbox and state.json as they were, no temporary state file left,
    /// and the inbox and quarantine still what they held, followed only by whole lines that
    /// parse (a torn line would be misread by the next reader).
    func expectNothingLost(since before: Image, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let after = image()
        #expect(after.outbox == before.outbox, "the outbox changed", sourceLocation: sourceLocation)
        #expect(after.state == before.state, "state.json changed", sourceLocation: sourceLocation)
        #expect(try queue.loadCheckpoint() != nil, sourceLocation: sourceLocation)
        let names = try FileManager.default.contentsOfDirectory(atPath: queue.path)
        #expect(!names.contains { $0.hasPrefix(".state.json.tmp") }, "a temporary state file was left: \(names)",
                sourceLocation: sourceLocation)
        Self.expectWholeLines("inbox", Array(after.inbox), keeping: Array(before.inbox), sourceLocation: sourceLocation) {
            if case .success = InboxLine.parse($0) { return true }
            return false
        }
        Self.expectWholeLines("quarantine", Array(after.quarantine), keeping: Array(before.quarantine), sourceLocation: sourceLocation) {
            QuarantineEntry(line: $0) != nil
        }
    }

    static func expectWholeLines(_ name: String, _ bytes: [UInt8], keeping old: [UInt8], sourceLocation: SourceLocation,
                                 parses: ([UInt8]) -> Bool) {
        #expect(bytes.starts(with: old), "\(name): lines it held were changed", sourceLocation: sourceLocation)
        #expect(bytes.isEmpty || bytes.last == 0x0A, "\(name) ends with a torn line (\(bytes.count) bytes)",
                sourceLocation: sourceLocation)
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        for (i, line) in lines.enumerated() where !parses(Array(line)) {
            Issue.record("\(name) line \(i + 1) does not parse", sourceLocation: sourceLocation)
        }
    }

    /// Once a run succeeded: every valid outbox line in the ledger exactly once, every invalid
    /// one quarantined exactly once, every delivery in the inbox exactly once, in order, and
    /// `db verify` clean.
    func expectComplete(sourceLocation: SourceLocation = #_sourceLocation) throws {
        var expectedEvents: [String] = []
        for (index, line) in script.lines.enumerated() where invalid[index + 1] == nil {
            let value = try JSONParser.parse(line)
            expectedEvents.append(value.objectValue?["event_id"]?.stringValue ?? "?")
        }
        let ledger = try world.texts("""
            SELECT event_id::text FROM cardsync.ledger WHERE origin = 'agency' AND agency_code = $1 ORDER BY seq, ledger_id
            """, [.text(SyncFixture.agency.code)])
        #expect(ledger == expectedEvents, "ledger: \(ledger.count) events, outbox: \(expectedEvents.count) valid lines",
                sourceLocation: sourceLocation)

        let quarantined = try QueueFiles.quarantineSummary(queue, sourceLocation: sourceLocation)
        let expectedQuarantine = invalid.keys.sorted().map { line in
            "\(line) malformed_json \(Data(invalid[line]!).base64EncodedString())"
        }
        #expect(quarantined == expectedQuarantine, sourceLocation: sourceLocation)

        let inbox = try QueueFiles.inbox(queue).map(\.ledgerID)
        let deliveries = try world.texts(
            "SELECT ledger_id::text FROM cardsync.deliveries WHERE agency_code = $1 ORDER BY delivery_id",
            [.text(SyncFixture.agency.code)])
        #expect(inbox.map(String.init) == deliveries, "inbox: \(inbox.count) lines, deliveries: \(deliveries.count)",
                sourceLocation: sourceLocation)
        let checkpoint = try #require(try queue.loadCheckpoint(), sourceLocation: sourceLocation)
        #expect(checkpoint.outboxOffset == Int64(QueueFiles.bytes(queue.outboxFile).count), sourceLocation: sourceLocation)
        #expect(checkpoint.inboxSize == Int64(QueueFiles.bytes(queue.inboxFile).count), sourceLocation: sourceLocation)
        #expect(checkpoint.quarantineSize == Int64(QueueFiles.bytes(queue.quarantineFile).count),
                sourceLocation: sourceLocation)
        try world.expectVerifyClean(sourceLocation: sourceLocation)
    }
}
