import CardCore
import Foundation

/// Reads inbox.jsonl back (for `queue status`, reconcile and dedupe). A final line without
/// `\n` (a torn write) is ignored; a complete line that is not an inbox entry is an error
/// (`.badInbox`), since only sync writes this file.
public final class InboxReader {
    public struct Positioned: Sendable, Equatable {
        public var entry: InboxLine
        public var lineNumber: Int
        public var endOffset: Int64
    }

    private let reader: OutboxReader?

    /// A missing inbox reads as empty.
    public init(url: URL, startOffset: Int64 = 0, startLine: Int = 0) throws(QueueError) {
        if FileManager.default.fileExists(atPath: url.path) {
            reader = try OutboxReader(url: url, startOffset: startOffset, startLine: startLine)
        } else {
            reader = nil
        }
    }

    /// Byte offset just after the last line returned.
    public var offset: Int64 { reader?.offset ?? 0 }

    public func nextBatch(maxLines: Int) throws(QueueError) -> [Positioned] {
        guard let reader else { return [] }
        var out: [Positioned] = []
        for line in try reader.nextBatch(maxLines: maxLines) {
            switch InboxLine.parse(line.bytes) {
            case .success(let entry):
                out.append(Positioned(entry: entry, lineNumber: line.lineNumber, endOffset: line.endOffset))
            case .failure(let e):
                throw QueueError(.badInbox,
                                 "\(reader.url.path) line \(line.lineNumber) is not an inbox entry (\(e.reason)); the file is written only by cardsync sync",
                                 path: reader.url.path)
            }
        }
        return out
    }

    /// Every complete entry.
    public func readAll() throws(QueueError) -> [InboxLine] {
        var all: [InboxLine] = []
        while true {
            let batch = try nextBatch(maxLines: 10_000)
            if batch.isEmpty { return all }
            all.append(contentsOf: batch.map(\.entry))
        }
    }

    public static func readAll(from url: URL) throws(QueueError) -> [InboxLine] {
        try InboxReader(url: url).readAll()
    }

    /// The event ids of the entries in the first `size` bytes of the inbox at `url`.
    public static func eventIDs(of url: URL, upTo size: Int64) throws(QueueError) -> Set<UUID> {
        let reader = try InboxReader(url: url)
        var ids = Set<UUID>()
        while true {
            let batch = try reader.nextBatch(maxLines: 10_000)
            for line in batch where line.endOffset <= size { ids.insert(line.entry.eventID) }
            if batch.isEmpty || batch.last!.endOffset >= size { return ids }
        }
    }
}
