import Foundation
import Synchronization

/// Work handed to benchmark worker threads that each run `cardsync` child processes, and what
/// those processes did: the first failure stops handing out work. Checked by the compiler: all
/// state lives in one `Mutex`.
final class ChildProcessBoard: Sendable {
    private struct State {
        var nextIndex = 0
        let count: Int
        var peakRSS = 0
        var failure: String?
        var seconds: [Double] = []
    }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(count: count)) }

    /// The largest resident set of any recorded process, in bytes.
    var peakRSS: Int { state.withLock { $0.peakRSS } }
    /// The first failure recorded, if any.
    var failure: String? { state.withLock { $0.failure } }
    /// Wall-clock seconds of each recorded process, in the order they finished.
    var seconds: [Double] { state.withLock { $0.seconds } }

    /// The next item to run, or nil when all are handed out or one has failed.
    func next() -> Int? {
        state.withLock { s in
            guard s.nextIndex < s.count, s.failure == nil else { return nil }
            defer { s.nextIndex += 1 }
            return s.nextIndex
        }
    }

    /// Records a finished process; `what` names it in a failure.
    func record(_ what: String, timed: Bool = true, _ outcome: Result<ChildProcess.Outcome, Error>) {
        state.withLock { s in
            switch outcome {
            case .success(let o):
                s.peakRSS = max(s.peakRSS, o.maxRSSBytes)
                if timed { s.seconds.append(o.seconds) }
                if o.status != 0 { s.failure = s.failure ?? "\(what) exited \(o.status)" }
            case .failure(let error):
                s.failure = s.failure ?? "\(what): \(error)"
            }
        }
    }
}
