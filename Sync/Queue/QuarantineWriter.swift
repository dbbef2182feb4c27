import CardCore
import Foundation

/// Appends rejected outbox lines to quarantine.jsonl, one JSON object per line, keys in this order:
/// `{"line": N, "raw": "<the line exactly as read>", "error": "<code>", "detail": "<human text>"}`.
/// A line that is not valid UTF-8 is kept as `"raw_base64"` instead of `"raw"`, so the original
/// bytes are never lost.
///
/// Entries are buffered by `append` and written by `flush()` in one write (O_APPEND) followed by
/// one fsync: call it once per batch, before the checkpoint that covers the batch is saved.
public final class QuarantineWriter {
    private let lines: LineAppender
    public var url: URL { lines.url }
    public var pendingCount: Int { lines.pendingCount }

    /// Opens (creating if needed) the quarantine file for appending.
    public init(url: URL) throws(QueueError) {
        lines = try LineAppender(url: url, what: "quarantine file")
    }

    public func close() { lines.close() }

    /// Buffers one entry; written by the next `flush()`.
    public func append(lineNumber: Int, raw: [UInt8], reason: QuarantineReason) {
        Self.writeEntry(lineNumber: lineNumber, raw: raw, reason: reason, into: &lines.pending)
        lines.lineAdded()
    }

    public func append(_ line: OutboxLine, reason: QuarantineReason) {
        append(lineNumber: line.lineNumber, raw: line.bytes, reason: reason)
    }

    /// Writes the buffered entries (one write) and fsyncs the file.
    public func flush() throws(QueueError) { try lines.flush() }

    /// The file's size in bytes (entries still buffered not included).
    public func size() throws(QueueError) -> Int64 { try lines.size() }

    /// Cuts the file back to `size` bytes (crash recovery: back to the last checkpoint) and
    /// drops buffered entries.
    public func truncate(toSize size: Int64) throws(QueueError) { try lines.truncate(toSize: size) }

    /// One quarantine entry, with its trailing `\n`.
    public static func entryBytes(lineNumber: Int, raw: [UInt8], reason: QuarantineReason) -> [UInt8] {
        var out: [UInt8] = []
        writeEntry(lineNumber: lineNumber, raw: raw, reason: reason, into: &out)
        return out
    }

    static func writeEntry(lineNumber: Int, raw: [UInt8], reason: QuarantineReason, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"line":"#.utf8)
        JSONWriter.writeInt(Int64(lineNumber), into: &out)
        let valid = raw.withUnsafeBytes { JSONParser.isValidUTF8($0) }
        if valid {
            out.append(contentsOf: #","raw":"#.utf8)
            raw.withUnsafeBytes { JSONWriter.writeString(utf8: $0, into: &out) }
        } else {
            out.append(contentsOf: #","raw_base64":"#.utf8)
            JSONWriter.writeString(Data(raw).base64EncodedString(), into: &out)
        }
        out.append(contentsOf: #","error":"#.utf8)
        JSONWriter.writeString(reason.code.rawValue, into: &out)
        out.append(contentsOf: #","detail":"#.utf8)
        JSONWriter.writeString(reason.detail, into: &out)
        out.append(contentsOf: "}\n".utf8)
    }
}

/// One quarantine.jsonl entry read back (for `queue status` and tests).
public struct QuarantineEntry: Sendable, Equatable {
    public var lineNumber: Int
    /// The original line bytes (decoded from `raw` or `raw_base64`).
    public var raw: [UInt8]
    public var error: String
    public var detail: String

    /// Parses one quarantine line; nil if it is not a quarantine entry.
    public init?(line: [UInt8]) {
        guard case .object(let o)? = try? JSONParser.parse(line),
              let number = o["line"]?.intValue, let error = o["error"]?.stringValue
        else { return nil }
        if let raw = o["raw"]?.stringValue {
            self.raw = Array(raw.utf8)
        } else if let encoded = o["raw_base64"]?.stringValue, let data = Data(base64Encoded: encoded) {
            self.raw = Array(data)
        } else {
            return nil
        }
        self.lineNumber = Int(number)
        self.error = error
        self.detail = o["detail"]?.stringValue ?? ""
    }

    /// Every complete entry of a quarantine file (none if it does not exist); lines that are not
    /// entries are skipped.
    public static func readAll(from url: URL) throws(QueueError) -> [QuarantineEntry] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let reader = try OutboxReader(url: url)
        return try reader.readAll().compactMap { QuarantineEntry(line: $0.bytes) }
    }
}
