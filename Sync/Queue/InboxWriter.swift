import CardCore
import Foundation

/// Appends inbox lines; `flush()` writes the batch in one write (O_APPEND) and fsyncs.
public final class InboxWriter {
    private let lines: LineAppender
    public var url: URL { lines.url }
    public var pendingCount: Int { lines.pendingCount }

    /// Opens (creating if needed) the inbox for appending.
    public init(url: URL) throws(QueueError) {
        lines = try LineAppender(url: url, what: "inbox")
    }

    public func close() { lines.close() }

    public func append(_ entry: InboxLine) {
        entry.write(into: &lines.pending)
        lines.lineAdded()
    }

    /// Appends an already built JSON object (compact, one line, no trailing `\n`).
    public func append(objectBytes: [UInt8]) {
        precondition(!objectBytes.contains(0x0A), "an inbox line must not contain a newline")
        lines.pending.append(contentsOf: objectBytes)
        lines.pending.append(0x0A)
        lines.lineAdded()
    }

    /// Writes the buffered lines (one write) and fsyncs the file.
    public func flush() throws(QueueError) { try lines.flush() }

    /// The file's size in bytes (buffered lines not included).
    public func size() throws(QueueError) -> Int64 { try lines.size() }

    /// Cuts the file back to `size` bytes (crash recovery) and drops buffered lines.
    public func truncate(toSize size: Int64) throws(QueueError) { try lines.truncate(toSize: size) }
}
