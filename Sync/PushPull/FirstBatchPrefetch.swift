import CardCore
import Foundation

/// A queue's first batch, read and validated while the worker still syncs the agency before it.
/// Half a batch: large enough that the next batch is ready when it has merged, small enough
/// that it and the batch merging meanwhile stay within the memory of two batches.
///
/// With one agency after another, each sync would otherwise start by waiting for its first
/// batch with the server idle. The prefetch reads without the queue's lock, so its sync uses it
/// only if, once locked, the checkpoint is still the one it read from and the centre was not
/// restored; otherwise it is dropped and the batch read again.
final class FirstBatchPrefetch: @unchecked Sendable {
    // @unchecked: handed from the worker that starts it to the sync that adopts or drops it,
    // never used by two threads at once (the preparation's own thread is waited for).
    let agencyCode: String
    let startOffset: Int64
    let startLine: Int
    let lastSeq: Int64?
    let reader: OutboxReader
    let preparer: BatchPreparer
    let first: BatchPreparer.Pending

    /// Starts reading `queue`'s next batch from its checkpoint; nil if the queue cannot be read
    /// now (its sync will say why).
    /// `keepLines`: the sync stages its batches (an agency's role), which sends their lines.
    static func start(_ queue: QueueDirectory, options: SyncOptions, keepLines: Bool = false) -> FirstBatchPrefetch? {
        guard let agency = try? queue.readAgency(), let checkpoint = try? queue.loadCheckpoint() ?? .initial,
              let reader = try? OutboxReader(url: queue.outboxFile, startOffset: checkpoint.outboxOffset,
                                             startLine: checkpoint.outboxLine)
        else { return nil }
        return FirstBatchPrefetch(agencyCode: agency.code, checkpoint: checkpoint, reader: reader, options: options,
                                  keepLines: keepLines)
    }

    private init(agencyCode: String, checkpoint: SyncCheckpoint, reader: OutboxReader, options: SyncOptions, keepLines: Bool) {
        self.agencyCode = agencyCode
        startOffset = checkpoint.outboxOffset
        startLine = checkpoint.outboxLine
        lastSeq = checkpoint.lastSeq
        self.reader = reader
        preparer = BatchPreparer(reader: reader, agency: agencyCode, batchSize: options.batchSize, lastSeq: checkpoint.lastSeq,
                                 linesAlreadyQuarantined: 0, firstBatchSize: options.batchSize / 2,
                                 keepLines: keepLines, clock: options.clock)
        first = preparer.prepareInBackground()
    }

    /// Whether a sync that starts from `checkpoint` (under the queue's lock) can use this.
    func matches(agency: String, checkpoint: SyncCheckpoint) -> Bool {
        agency == agencyCode && checkpoint.outboxOffset == startOffset && checkpoint.outboxLine == startLine
            && checkpoint.lastSeq == lastSeq
    }

    /// Waits for the preparation and closes the file.
    func drop() {
        _ = try? first.wait()
        reader.close()
    }
}
