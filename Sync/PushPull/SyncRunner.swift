import CardCore
import Foundation
import Synchronization
import Logging
import PostgresClient

/// Syncs many agency queues, `jobs` at a time, each worker on two connections of its own (the
/// second writes the projection while the first writes the ledger; see `CentralMerge`).
///
/// Agencies do not block each other except for the short merge step of each batch (the merge
/// lock), so a slow or failing agency never stops the others: each result is reported alone.
public struct SyncRunner: Sendable {
    public typealias Connect = @Sendable () throws -> Connection

    let connect: Connect
    let options: SyncOptions
    let logger: Logger
    /// Retries after a lost or failed connection, with doubling backoff (0: fail at once).
    var retries: Int

    public init(connect: @escaping Connect, options: SyncOptions = SyncOptions(), retries: Int = 0,
                logger: Logger) {
        self.connect = connect
        self.options = options
        self.retries = retries
        self.logger = logger
    }

    /// Syncs every queue; results are in the order of `queues`.
    public func run(_ queues: [QueueDirectory], jobs: Int,
                    progress: (@Sendable (_ finishedAgencies: Int, _ bytesDone: Int64, _ bytesTotal: Int64) -> Void)? = nil)
        -> [Result<AgencySyncResult, Error>]
    {
        let board = Board(count: queues.count, totals: queues.map(Self.outboxSize))
        let workers = max(1, min(jobs, queues.count))
        // One worker syncs the queues one after another: it claims the next queue at once and
        // reads its first batch while the current one merges its last. Several workers take
        // queues as they free up instead (claiming ahead would leave one idle at the end while
        // another holds two), and their validation overlaps anyway.
        let readAhead = workers == 1
        ConcurrentWorkers.run(workers) { _ in
            var connections: Connections?
            var current = board.next()
            var prefetch: FirstBatchPrefetch?
            while let index = current {
                let queue = queues[index]
                var upcoming: QueueDirectory?
                if readAhead {
                    current = board.next()
                    upcoming = current.map { queues[$0] }
                }
                let prefetchHere = prefetch
                prefetch = nil
                let startNext = { (keepLines: Bool) in
                    if let upcoming, prefetch == nil { prefetch = FirstBatchPrefetch.start(upcoming, options: options, keepLines: keepLines) }
                }
                let result = Result { try syncWithRetries(queue, connections: &connections, prefetch: prefetchHere,
                                                          onLastBatch: startNext) { done in
                    board.report(index, bytes: done)
                    if let progress { let (f, d, t) = board.snapshot(); progress(f, d, t) }
                } }
                if case .failure = result { connections = nil }
                board.finish(index, result)
                if let progress { let (f, d, t) = board.snapshot(); progress(f, d, t) }
                if !readAhead { current = board.next() }
            }
        }
        return board.results.map { $0! }
    }

    /// A worker's two connections: the sync's own and the one its merges write the projection on.
    private struct Connections {
        var main: Connection
        var projection: Connection
        var isHealthy: Bool { main.isHealthy && projection.isHealthy }
    }

    private func syncWithRetries(_ queue: QueueDirectory, connections: inout Connections?, prefetch: FirstBatchPrefetch?,
                                 onLastBatch: @escaping (Bool) -> Void,
                                 progress: @escaping (Int64) -> Void) throws -> AgencySyncResult {
        var attempt = 0
        var prefetch = prefetch
        defer { prefetch?.drop() }
        while true {
            do {
                if connections == nil || connections?.isHealthy == false {
                    connections = Connections(main: try connect(), projection: try connect())
                }
                let sync = AgencySync(queue: queue, connection: connections!.main, projection: connections!.projection,
                                      options: options, logger: logger) { done, _ in
                    progress(done)
                }
                // Only the first attempt may use it: a retry starts from the checkpoint afresh.
                sync.prefetch = prefetch
                sync.onLastBatch = onLastBatch
                prefetch = nil
                return try sync.run()
            } catch where attempt < retries && Self.isRetryable(error) {
                attempt += 1
                connections = nil
                let delay = Self.retryDelay(attempt: attempt)
                logger.warning("sync failed, retrying", metadata: ["queue": "\(queue.path)", "attempt": "\(attempt)",
                                                                   "delay_s": "\(delay)", "error": "\(error)"])
                Thread.sleep(forTimeInterval: delay)
            }
        }
    }

    /// A connection that broke or a concurrency failure, also when wrapped in a `SyncError`.
    static func isRetryable(_ error: any Error) -> Bool {
        (error as? PostgresError)?.isRetryable ?? (error as? SyncError)?.isRetryable ?? false
    }

    /// Seconds to wait before retry number `attempt` (1, 2, 4, … at most 30): shared by every
    /// `--retry`, so that the command's first connection backs off like its syncs.
    public static func retryDelay(attempt: Int) -> Double {
        min(30.0, pow(2.0, Double(attempt - 1)))
    }

    private static func outboxSize(_ queue: QueueDirectory) -> Int64 {
        (try? FileManager.default.attributesOfItem(atPath: queue.outboxFile.path)[.size] as? Int64) ?? 0
    }

    /// Work distribution and results, shared by the workers (checked by the compiler: all
    /// state lives in one `Mutex`).
    private final class Board: Sendable {
        private struct State {
            var nextIndex = 0
            var done: [Int64]
            let totals: [Int64]
            var finished = 0
            var results: [Result<AgencySyncResult, Error>?]
        }
        private let state: Mutex<State>

        init(count: Int, totals: [Int64]) {
            state = Mutex(State(done: Array(repeating: 0, count: count), totals: totals,
                                results: Array(repeating: nil, count: count)))
        }

        var results: [Result<AgencySyncResult, Error>?] { state.withLock { $0.results } }

        func next() -> Int? {
            state.withLock { s in
                guard s.nextIndex < s.results.count else { return nil }
                defer { s.nextIndex += 1 }
                return s.nextIndex
            }
        }

        func report(_ index: Int, bytes: Int64) {
            state.withLock { $0.done[index] = bytes }
        }

        func finish(_ index: Int, _ result: Result<AgencySyncResult, Error>) {
            state.withLock { s in
                s.results[index] = result
                s.done[index] = s.totals[index]
                s.finished += 1
            }
        }

        func snapshot() -> (Int, Int64, Int64) {
            state.withLock { s in (s.finished, s.done.reduce(0, +), s.totals.reduce(0, +)) }
        }
    }
}

extension PostgresError {
    /// Worth retrying: the connection broke or could not be made, or the server gave up on a
    /// transaction because of concurrency (serialization failure, deadlock).
    public var isRetryable: Bool {
        kind == .connection || sqlStateClass == "08" || isSerializationFailure || sqlState == "57P01"
    }
}
