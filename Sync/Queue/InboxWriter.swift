import CardCore
import Foundation

/// Appends inbox lines; `flush()` writes the batch in one write (O_APPEND) and fsyncs.
public final class InboxWriter {
    public let url: URL
    private let file: QueueFile
    private var pending: [UInt8] = []
    public private(set) var pendingCount = 0

    /// Opens (creating if needed) the inbox for appending.
    public init(url: URL) throws(QueueError) {
        self.url = url
        file = try QueueFile.open(url.path, .append, what: "inbox")
    }

    deinit { file.close() }

    public func close() { file.close() }

    public func append(_ entry: InboxLine) {
        entry.write(into: &pending)
        pendingCount += 1
    }

    /// Appends an already built JSON object (compact, one line, no trailing `\n`).
    public func append(objectBytes: [UInt8]) {
        precondition(!objectBytes.contains(0x0A), "an inbox line must not contain a newline")
        pending.append(contentsOf: objectBytes)
        pending.append(0x0A)
        pendingCount += 1
    }

    /// Writes the buffered lines (one write) and fsyncs the file.
    public func flush() throws(QueueError) {
        guard !pending.isEmpty else { return }
        try file.writeAll(pending)
        try file.sync()
        pending.removeAll(keepingCapacity: true)
        pendingCount = 0
    }

    /// The file's size in bytes (buffered lines not included).
    public func size() throws(QueueError) -> Int64 { try file.size() }

    /// Cuts the file back to `size` bytes (crash recovery) and drops buffered lines.
    public func truncate(toSize size: Int64) throws(QueueError) {
        pending.removeAll()
        pendingCount = 0
        try file.truncate(to: size)
        try file.sync()
    }
}
