import Foundation

/// A sync-owned JSON-lines file (inbox, quarantine) that lines are appended to in batches:
/// `flush()` writes the buffered lines in one O_APPEND write and fsyncs, and `truncate` cuts the
/// file back to a checkpointed size after a crash.
final class LineAppender {
    let url: URL
    private let file: QueueFile
    /// Bytes of the buffered lines, each ending with `\n`.
    var pending: [UInt8] = []
    private(set) var pendingCount = 0

    init(url: URL, what: String) throws(QueueError) {
        self.url = url
        file = try QueueFile.open(url.path, .append, what: what)
    }

    deinit { file.close() }

    func close() { file.close() }

    /// Counts a line the caller has written into `pending`.
    func lineAdded() { pendingCount += 1 }

    func flush() throws(QueueError) {
        guard !pending.isEmpty else { return }
        let before = try file.size()
        do {
            try file.writeAll(pending)
            try file.sync()
        } catch {
            // A write that fails part way (disk full: the file's last block takes what fits)
            // leaves part of the batch behind, its last line torn, until the next sync cuts the
            // file back to the checkpoint. Counter software reads the inbox meanwhile, so cut it
            // back now: the file holds whole lines only; the lines stay buffered.
            try? file.truncate(to: before)
            try? file.sync()
            throw error
        }
        pending.removeAll(keepingCapacity: true)
        pendingCount = 0
    }

    func size() throws(QueueError) -> Int64 { try file.size() }

    func truncate(toSize size: Int64) throws(QueueError) {
        pending.removeAll()
        pendingCount = 0
        try file.truncate(to: size)
        try file.sync()
    }
}
