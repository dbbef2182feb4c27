import CardCore
import Foundation

/// A checkpoint rebuilt from the queue's own files when `state.json` is missing or unreadable.
///
/// Without a checkpoint, sync must not start from nothing: the inbox and the quarantine hold
/// lines the centre may never be able to deliver again (a restored centre), so they are kept,
/// whole. Only a torn last line (no `\n`, from a process that died mid-append) is cut, because
/// sync rewrites it. The outbox is read again from the start; the centre recognises the events
/// it has by `event_id`, lines quarantined before are not quarantined twice, and the pull skips
/// decisions the inbox already holds.
public struct CheckpointRecovery: Sendable {
    /// The checkpoint to start from: sizes of the complete lines in the inbox and quarantine,
    /// nothing read from the outbox, no pull cursor.
    public var checkpoint: SyncCheckpoint
    /// The greatest outbox line number quarantine.jsonl already holds.
    public var linesAlreadyQuarantined: Int
    /// Where an unreadable state.json was moved (nil when it was missing).
    public var setAside: URL?
    /// Why the checkpoint was rebuilt, for the log.
    public var reason: String

    /// Rebuilds the checkpoint of `queue`. `unreadable` is the error that loading state.json
    /// gave, if it exists but cannot be read: the file is then renamed aside, not deleted.
    public static func rebuild(_ queue: QueueDirectory, unreadable: QueueError?) throws(QueueError) -> CheckpointRecovery {
        var setAside: URL?
        if unreadable != nil {
            let stamp = Timestamp.now.format(offsetSeconds: 0).filter { $0.isNumber }
            let aside = queue.stateFile.deletingLastPathComponent().appendingPathComponent("state.json.unreadable-\(stamp)")
            try QueueFile.rename(queue.stateFile.path, aside.path)
            try QueueFile.syncDirectory(queue.stateFile.deletingLastPathComponent().path)
            setAside = aside
        }
        var checkpoint = SyncCheckpoint.initial
        checkpoint.inboxSize = try completeLinesSize(queue.inboxFile)
        checkpoint.quarantineSize = try completeLinesSize(queue.quarantineFile)
        let quarantined = try QuarantineEntry.readAll(from: queue.quarantineFile).map(\.lineNumber).max() ?? 0
        let reason = setAside.map { "state.json could not be read (moved to \($0.lastPathComponent))" }
            ?? "state.json is missing"
        return CheckpointRecovery(checkpoint: checkpoint, linesAlreadyQuarantined: quarantined, setAside: setAside,
                                  reason: reason)
    }

    /// The size of the file up to and including its last `\n` (0 if it does not exist).
    static func completeLinesSize(_ url: URL) throws(QueueError) -> Int64 {
        guard QueueFile.exists(url.path) else { return 0 }
        let file = try QueueFile.open(url.path, .readOnly, what: url.lastPathComponent)
        defer { file.close() }
        var end = try file.size()
        let chunk: Int64 = 64 * 1024
        while end > 0 {
            let start = max(0, end - chunk)
            let bytes = try file.readBytes(at: start, count: Int(end - start))
            if let last = bytes.lastIndex(of: 0x0A) { return start + Int64(last) + 1 }
            end = start
        }
        return 0
    }
}
