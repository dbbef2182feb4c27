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
        try forEachValidEvent(queue, quarantined: quarantined, now: now, batchSize: batchSize) { event, _ in
            holdings.events.insert(event.eventID, info: OutboxInfo(seq: event.seq, lineNumber: event.lineNumber))
            if event.lineNumber <= checkpoint.outboxLine {
                holdings.syncedMaxSeq = max(holdings.syncedMaxSeq ?? event.seq, event.seq)
            }
        } lines: { holdings.outboxLines = $0 }

        try readInbox(queue, upTo: checkpoint.inboxSize, batchSize: batchSize) { id, info in
            holdings.decisions.insert(id, info: info)
        }
        return holdings
    }

    /// Calls `body` with the event id and details of each inbox entry in the first `size` bytes.
    ///
    /// Sync writes every entry as `{"ledger_id":N,"event_id":"…","application_id":"…","type":"…",…`
    /// (InboxLine), so those four fields are read at their places without parsing the rest;
    /// an entry spelled any other way goes through the full parser (and a line that is not an
    /// entry at all is the same `.badInbox` error InboxReader gives).
    static func readInbox(_ queue: QueueDirectory, upTo size: Int64, batchSize: Int,
                          _ body: (UUID, InboxInfo) -> Void) throws {
        guard size > 0, FileManager.default.fileExists(atPath: queue.inboxFile.path) else { return }
        let reader = try OutboxReader(url: queue.inboxFile)
        defer { reader.close() }
        reading: while true {
            let batch = try reader.nextBatch(maxLines: batchSize)
            if batch.isEmpty { break }
            for line in batch {
                if line.endOffset > size { break reading }
                if let (id, info) = fastInboxFields(line.bytes) {
                    body(id, info)
                    continue
                }
                switch InboxLine.parse(line.bytes) {
                case .success(let e):
                    body(e.eventID, InboxInfo(ledgerID: e.ledgerID, applicationID: e.applicationID, type: e.type))
                case .failure(let e):
                    throw QueueError(.badInbox,
                                     "\(queue.inboxFile.path) line \(line.lineNumber) is not an inbox entry (\(e.reason)); the file is written only by cardsync sync",
                                     path: queue.inboxFile.path)
                }
            }
        }
    }

    private static let ledgerIDKey = Array(#"{"ledger_id":"#.utf8)
    private static let eventIDKey = Array(#","event_id":""#.utf8)
    private static let applicationIDKey = Array(#"","application_id":""#.utf8)
    private static let typeKey = Array(#"","type":""#.utf8)

    /// The fields of an entry written by InboxLine, or nil when the line is spelled otherwise.
    static func fastInboxFields(_ b: [UInt8]) -> (UUID, InboxInfo)? {
        b.withUnsafeBufferPointer { p -> (UUID, InboxInfo)? in
            var i = 0
            func expect(_ key: [UInt8]) -> Bool {
                guard i + key.count <= p.count else { return false }
                for k in key.indices where p[i + k] != key[k] { return false }
                i += key.count
                return true
            }
            guard expect(ledgerIDKey) else { return nil }
            var ledgerID: Int64 = 0
            let digitsStart = i
            while i < p.count, p[i] >= 0x30, p[i] <= 0x39, i - digitsStart < 18 {
                ledgerID = ledgerID * 10 + Int64(p[i] - 0x30)
                i += 1
            }
            guard i > digitsStart, expect(eventIDKey), let eventID = uuid(p, at: i) else { return nil }
            i += 36
            guard expect(applicationIDKey), let applicationID = uuid(p, at: i) else { return nil }
            i += 36
            guard expect(typeKey) else { return nil }
            let typeStart = i
            while i < p.count, p[i] != UInt8(ascii: "\""), p[i] != UInt8(ascii: "\\") { i += 1 }
            guard i < p.count, p[i] == UInt8(ascii: "\""),
                  let type = EventType(rawValue: String(decoding: UnsafeBufferPointer(rebasing: p[typeStart..<i]), as: UTF8.self))
            else { return nil }
            return (eventID, InboxInfo(ledgerID: ledgerID, applicationID: applicationID, type: type))
        }
    }

    /// A UUID written 8-4-4-4-12 in hex digits at `start`.
    static func uuid(_ p: UnsafeBufferPointer<UInt8>, at start: Int) -> UUID? {
        guard start + 36 <= p.count else { return nil }
        @inline(__always) func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var n = 0
            var k = start
            while k < start + 36 {
                let offset = k - start
                if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                    guard p[k] == 0x2D else { return false }
                    k += 1
                    continue
                }
                guard let high = hex(p[k]), let low = hex(p[k + 1]) else { return false }
                out[n] = high << 4 | low
                n += 1
                k += 2
            }
            return true
        }
        return ok ? UUID(uuid: value) : nil
    }

    /// Calls `body` with each valid outbox event, in file order, exactly as sync's push loop
    /// validates them, leaving out the lines in `quarantined`.
    static func forEachValidEvent(_ queue: QueueDirectory, quarantined: Set<Int>, now: Timestamp, batchSize: Int,
                                  _ body: (QueueEvent, [UInt8]) throws -> Void, lines: (Int) -> Void = { _ in }) throws {
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
                    try body(event, line.bytes)
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
