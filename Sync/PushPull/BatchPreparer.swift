import CardCore
import Dispatch
import Foundation
import Synchronization

/// One outbox batch read and validated, ready to merge.
struct PreparedBatch: Sendable {
    var events: [LedgerEvent] = []
    /// The valid events' lines as the outbox holds them (a staged push: then `events` is empty).
    var lines: [String] = []
    var quarantined: [(OutboxLine, QuarantineReason)] = []
    /// The greatest valid seq in the batch.
    var maxSeq: Int64?
    /// The greatest seq seen so far in the file (for `seq_not_increasing`).
    var lastSeq: Int64?
    var endOffset: Int64 = 0
    var lastLine = 0
    /// Fewer complete lines were left than a batch holds: this is the outbox's last batch for now.
    var reachedEnd = false
}

/// Reads and validates outbox batches, one batch ahead of the merge, on a background thread.
/// Only one preparation runs at a time (the caller waits for each before starting the next),
/// so the reader and the seq state are never touched by two threads at once.
final class BatchPreparer: @unchecked Sendable {
    private let reader: OutboxReader
    private let agency: String
    private let batchSize: Int
    private var lastSeq: Int64?
    private let linesAlreadyQuarantined: Int
    private let clock: @Sendable () -> Timestamp
    private var batchesPrepared = 0
    private let firstBatchSize: Int
    /// Whether batches keep their valid lines' text (a staged push sends the lines themselves).
    let keepsLines: Bool

    /// The first batch is smaller: `firstBatchSize` lines, by default a tenth of `batchSize`, for
    /// a preparation that nothing else overlaps (see `prepare`).
    init(reader: OutboxReader, agency: String, batchSize: Int, lastSeq: Int64?,
         linesAlreadyQuarantined: Int, firstBatchSize: Int? = nil, keepLines: Bool = false,
         clock: @escaping @Sendable () -> Timestamp) {
        self.keepsLines = keepLines
        self.firstBatchSize = max(1, firstBatchSize ?? batchSize / 10)
        self.reader = reader
        self.agency = agency
        self.batchSize = batchSize
        self.lastSeq = lastSeq
        self.linesAlreadyQuarantined = linesAlreadyQuarantined
        self.clock = clock
    }

    /// A batch being prepared; `wait()` returns it (nil at the end of the outbox) or its error.
    final class Pending: Sendable {
        private let done = DispatchSemaphore(value: 0)
        /// Set once, by the preparing thread, before it signals `done`.
        private let outcome = Mutex<Result<PreparedBatch?, Error>?>(nil)

        /// Waits for the preparation; calling it again returns the same outcome at once.
        func wait() throws -> PreparedBatch? {
            done.wait()
            done.signal()  // leaves the semaphore up for the next call
            return try outcome.withLock { $0 ?? .success(nil) }.get()
        }

        fileprivate func finish(_ outcome: Result<PreparedBatch?, Error>) {
            self.outcome.withLock { $0 = outcome }
            done.signal()
        }
    }

    func prepareInBackground() -> Pending {
        let pending = Pending()
        DispatchQueue.global().async { pending.finish(Result { try self.prepare() }) }
        return pending
    }

    /// Reads the next batch and validates every line (nil at the end of the outbox).
    func prepare() throws -> PreparedBatch? {
        // The first batch is validated while nothing else runs; keeping it small starts the
        // merge (and the overlap of validation with it) sooner.
        let size = batchesPrepared == 0 ? min(firstBatchSize, batchSize) : batchSize
        batchesPrepared += 1
        let lines = try reader.nextBatch(maxLines: size)
        guard let last = lines.last else { return nil }
        let validator = EventLineValidator(mode: .outbox, now: clock())
        var batch = PreparedBatch()
        batch.reachedEnd = lines.count < size
        if !keepsLines { batch.events.reserveCapacity(lines.count) }
        for line in lines {
            let verdict = validator.check(line.bytes, lineNumber: line.lineNumber, lastSeq: lastSeq)
            if let seq = verdict.seq { lastSeq = max(lastSeq ?? seq, seq) }
            switch verdict.result {
            case .success(let event):
                batch.maxSeq = max(batch.maxSeq ?? event.seq, event.seq)
                // Every valid event goes to the merge, also one whose seq is at or below the
                // centre's pushed_seq: the centre recognises what it has by event_id. A seq
                // alone proves nothing after the agency restored its queue from a backup and
                // recorded new events under the seqs it had used before.
                // A staged push sends the line itself (the bureau's merge parses it again), so
                // its parsed form is not kept: a batch's events cost several times its lines.
                if keepsLines {
                    batch.lines.append(String(decoding: line.bytes, as: UTF8.self))
                } else {
                    batch.events.append(LedgerEvent(queueEvent: event, agency: agency))
                }
            case .failure(let reason):
                // After a central restore the outbox is re-read from the start; lines quarantined
                // before are already in quarantine.jsonl.
                if line.lineNumber > linesAlreadyQuarantined { batch.quarantined.append((line, reason)) }
            }
        }
        batch.lastSeq = lastSeq
        batch.endOffset = last.endOffset
        batch.lastLine = last.lineNumber
        return batch
    }
}
