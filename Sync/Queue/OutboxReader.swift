import Foundation

/// One complete line of a queue file.
public struct OutboxLine: Sendable, Equatable {
    /// The line's bytes, without the trailing `\n`, exactly as in the file.
    public var bytes: [UInt8]
    /// 1-based line number in the file.
    public var lineNumber: Int
    /// Byte offset just after this line's `\n`: where reading resumes after this line.
    public var endOffset: Int64

    public init(bytes: [UInt8], lineNumber: Int, endOffset: Int64) {
        self.bytes = bytes
        self.lineNumber = lineNumber
        self.endOffset = endOffset
    }
}

/// Streams the complete lines of outbox.jsonl (or any JSON-lines queue file) from a starting
/// byte offset and line number, reading in chunks.
///
/// A final line without `\n` is an append in progress or torn by a crash: it is not returned
/// (and `offset` stays before it), so a later reader or a later `nextBatch` call picks it up once
/// it is complete. The file may grow while it is read.
///
/// Memory: one chunk (1 MiB by default) plus the longest line. A line longer than a chunk is
/// still read whole, so that quarantine can keep its original bytes.
public final class OutboxReader {
    public static let defaultChunkSize = 1 << 20

    public let url: URL
    /// Byte offset just after the last line returned (the checkpoint's `outbox_offset`).
    public private(set) var offset: Int64
    /// Number of the last line returned (the checkpoint's `outbox_line`); 0 before the first.
    public private(set) var lineNumber: Int

    private let file: QueueFile
    private let chunkSize: Int
    /// Unconsumed bytes read from the file; `buffer[start...]` follows `offset`.
    private var buffer: [UInt8] = []
    private var start = 0
    /// Where to continue looking for a newline (bytes before it have none).
    private var scanFrom = 0
    /// For input files (`queue append`): a final line without `\n` counts as complete at EOF.
    private let finalLineIsComplete: Bool

    /// Opens `url` and positions after `startOffset` bytes, which hold lines 1...`startLine`.
    /// Throws `.outboxTruncated` when the file is shorter than `startOffset`, and `.badState`
    /// when either start is negative: they come from state.json, which a person can edit or a
    /// disk can damage, so a bad one is an error that says so, not a crash.
    public init(url: URL, startOffset: Int64 = 0, startLine: Int = 0,
                chunkSize: Int = OutboxReader.defaultChunkSize) throws(QueueError)
    {
        precondition(chunkSize > 0, "chunk size must be positive") // the caller's constant
        guard startOffset >= 0, startLine >= 0 else {
            throw QueueError(.badState,
                             "cannot read \(url.path) from byte \(startOffset), line \(startLine): a checkpoint position is never negative. state.json is damaged: move it aside to sync this queue from the start (already synced events are recognised and not applied twice)",
                             path: url.path)
        }
        self.url = url
        self.offset = startOffset
        self.lineNumber = startLine
        self.chunkSize = chunkSize
        self.finalLineIsComplete = false
        file = try QueueFile.open(url.path, .readOnly, what: "queue file")
        let size = try file.size()
        guard size >= startOffset else {
            throw QueueError(.outboxTruncated,
                             "\(url.path) is \(size) bytes long but \(startOffset) bytes of it were already synced: the file was truncated or replaced. Restore it, or move state.json aside to sync it from the start (already synced events are recognised and not applied twice)",
                             path: url.path)
        }
        try file.seek(to: startOffset)
    }

    /// Reads from an already open descriptor (standard input) or a file, treating a final line
    /// without `\n` as complete.
    init(input file: QueueFile, displayURL: URL, chunkSize: Int = OutboxReader.defaultChunkSize) {
        self.url = displayURL
        self.offset = 0
        self.lineNumber = 0
        self.chunkSize = chunkSize
        self.finalLineIsComplete = true
        self.file = file
    }

    deinit { file.close() }

    public func close() { file.close() }

    /// Up to `maxLines` complete lines after the previous ones; empty when no complete line
    /// follows (end of file, or only a line still being written).
    public func nextBatch(maxLines: Int) throws(QueueError) -> [OutboxLine] {
        var lines: [OutboxLine] = []
        lines.reserveCapacity(min(maxLines, 4096))
        var atEOF = false
        while lines.count < maxLines {
            if let newline = findNewline() {
                let bytes = Array(buffer[start..<newline])
                offset += Int64(newline - start + 1)
                lineNumber += 1
                lines.append(OutboxLine(bytes: bytes, lineNumber: lineNumber, endOffset: offset))
                start = newline + 1
                scanFrom = start
                continue
            }
            if atEOF {
                if finalLineIsComplete && start < buffer.count {
                    let bytes = Array(buffer[start...])
                    offset += Int64(buffer.count - start)
                    lineNumber += 1
                    lines.append(OutboxLine(bytes: bytes, lineNumber: lineNumber, endOffset: offset))
                    start = buffer.count
                    scanFrom = start
                }
                break
            }
            if try fill() == 0 { atEOF = true }
        }
        return lines
    }

    /// Every remaining complete line (for small files and tests).
    public func readAll() throws(QueueError) -> [OutboxLine] {
        var all: [OutboxLine] = []
        while true {
            let batch = try nextBatch(maxLines: 10_000)
            if batch.isEmpty { return all }
            all.append(contentsOf: batch)
        }
    }

    private func findNewline() -> Int? {
        guard scanFrom < buffer.count else { return nil }
        let found: Int? = buffer.withUnsafeBytes { raw in
            QueueFile.firstIndex(of: 0x0A, in: UnsafeRawBufferPointer(rebasing: raw[scanFrom...])).map { $0 + scanFrom }
        }
        if found == nil { scanFrom = buffer.count }
        return found
    }

    /// Drops consumed bytes and reads one more chunk; returns the number of bytes read.
    private func fill() throws(QueueError) -> Int {
        if start > 0 {
            buffer.removeSubrange(0..<start)
            scanFrom -= start
            start = 0
        }
        let n = try file.read(appendingTo: &buffer, count: chunkSize)
        return n
    }
}
