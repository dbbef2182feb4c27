import Foundation

/// Work handed to benchmark worker threads that each run `cardsync` child processes, and what
/// those processes did: the first failure stops handing out work.
final class ChildProcessBoard: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var nextIndex = 0
    private let count: Int
    private(set) var peakRSS = 0
    private(set) var failure: String?
    /// Wall-clock seconds of each recorded process, in the order they finished.
    private(set) var seconds: [Double] = []

    init(count: Int) { self.count = count }

    /// The next item to run, or nil when all are handed out or one has failed.
    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard nextIndex < count, failure == nil else { return nil }
        defer { nextIndex += 1 }
        return nextIndex
    }

    /// Records a finished process; `what` names it in a failure.
    func record(_ what: String, timed: Bool = true, _ outcome: Result<ChildProcess.Outcome, Error>) {
        lock.lock(); defer { lock.unlock() }
        switch outcome {
        case .success(let o):
            peakRSS = max(peakRSS, o.maxRSSBytes)
            if timed { seconds.append(o.seconds) }
            if o.status != 0 { failure = failure ?? "\(what) exited \(o.status)" }
        case .failure(let error):
            failure = failure ?? "\(what): \(error)"
        }
    }
}
