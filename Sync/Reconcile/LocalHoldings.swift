import CardCore
import Foundation

/// What an agency queue holds, as reconcile sees it: the event ids of its valid outbox lines
/// and of its inbox entries, with the bucket of each.
///
/// Consistent with `cardsync sync`:
/// - outbox lines are checked by the same `EventLineValidator`, from line 1 (so
///   `seq_not_increasing` sees the same history); a line sync quarantined stays out even if it
///   would pass now (an `occurred_in_future` line whose time has come);
/// - only what the checkpoint commits counts: quarantine.jsonl and inbox.jsonl up to the sizes
///   in state.json (bytes after them are a crashed sync's leftovers, which the next sync cuts);
/// - valid lines after the checkpoint's `outbox_line` are not yet synced: they are counted, and
///   left to sync, not reported as missing.
struct LocalHoldings {
    struct OutboxInfo {
        var seq: Int64
        var lineNumber: Int
    }

    struct InboxInfo {
        var ledgerID: Int64
        var applicationID: UUID
        var type: EventType
    }

    var events: KeyedIDSet<OutboxInfo>
    var decisions: KeyedIDSet<InboxInfo>
    /// The greatest valid seq on lines the checkpoint covers.
    var syncedMaxSeq: Int64?
    /// Outbox lines read (complete lines only).
    var outboxLines = 0

    /// Reads the queue. `checkpoint` is the queue's state.json.
    static func read(_ queue: QueueDirectory, checkpoint: SyncCheckpoint, bucketCount: Int, now: Timestamp,
                     batchSize: Int) throws -> LocalHoldings {
        var holdings = LocalHoldings(events: KeyedIDSet(bucketCount: bucketCount),
                                     decisions: KeyedIDSet(bucketCount: bucketCount))
        let quarantined = try quarantinedLines(queue, upTo: checkpoint.quarantineSize)
        try forEachValidEvent(queue, quarantined: quarantined, now: now, batchSize: batchSize) { event in
            holdings.events.insert(event.eventID, info: OutboxInfo(seq: event.seq, lineNumber: event.lineNumber))
            if event.lineNumber <= checkpoint.outboxLine {
                holdings.syncedMaxSeq = max(holdings.syncedMaxSeq ?? event.seq, event.seq)
            }
        } lines: { holdings.outboxLines = $0 }

        let inbox = try InboxReader(url: queue.inboxFile)
        reading: while true {
            let batch = try inbox.nextBatch(maxLines: batchSize)
            if batch.isEmpty { break }
            for line in batch {
                if line.endOffset > checkpoint.inboxSize { break reading }
                let e = line.entry
                holdings.decisions.insert(e.eventID, info: InboxInfo(ledgerID: e.ledgerID, applicationID: e.applicationID, type: e.type))
            }
        }
        return holdings
    }

    /// Calls `body` with each valid outbox event, in file order, exactly as sync's push loop
    /// validates them, leaving out the lines in `quarantined`.
    static func forEachValidEvent(_ queue: QueueDirectory, quarantined: Set<Int>, now: Timestamp, batchSize: Int,
                                  _ body: (QueueEvent) throws -> Void, lines: (Int) -> Void = { _ in }) throws {
        guard FileManager.default.fileExists(atPath: queue.outboxFile.path) else { return }
        let reader = try OutboxReader(url: queue.outboxFile)
        defer { reader.close() }
        let validator = EventLineValidator(mode: .outbox, now: now)
        var lastSeq: Int64?
        while true {
            let batch = try reader.nextBatch(maxLines: batchSize)
            guard let last = batch.last else { break }
            for line in batch {
                let verdict = validator.check(line.bytes, lineNumber: line.lineNumber, lastSeq: lastSeq)
                if let seq = verdict.seq { lastSeq = max(lastSeq ?? seq, seq) }
                if case .success(let event) = verdict.result, !quarantined.contains(line.lineNumber) {
                    try body(event)
                }
            }
            lines(last.lineNumber)
        }
    }

    /// Line numbers listed in quarantine.jsonl within its first `size` bytes.
    static func quarantinedLines(_ queue: QueueDirectory, upTo size: Int64) throws -> Set<Int> {
        guard size > 0, FileManager.default.fileExists(atPath: queue.quarantineFile.path) else { return [] }
        let reader = try OutboxReader(url: queue.quarantineFile)
        defer { reader.close() }
        var out: Set<Int> = []
        while true {
            let batch = try reader.nextBatch(maxLines: 10_000)
            if batch.isEmpty { break }
            for line in batch where line.endOffset <= size {
                if let number = leadingLineNumber(line.bytes) { out.insert(number) }
            }
        }
        return out
    }

    /// `N` from an entry that starts `{"line":N,` (as QuarantineWriter writes them), without
    /// parsing the possibly long rest; falls back to a full parse for any other spelling.
    static func leadingLineNumber(_ bytes: [UInt8]) -> Int? {
        let prefix = Array(#"{"line":"#.utf8)
        if bytes.count > prefix.count, Array(bytes[0..<prefix.count]) == prefix {
            var value = 0
            var i = prefix.count
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, value < Int.max / 10 - 9 {
                value = value * 10 + Int(bytes[i] - 0x30)
                i += 1
            }
            if i > prefix.count, i < bytes.count, bytes[i] == UInt8(ascii: ",") { return value }
        }
        return QuarantineEntry(line: bytes)?.lineNumber
    }
}
