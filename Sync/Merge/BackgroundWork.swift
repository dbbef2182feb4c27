import Foundation

/// Runs a closure on a thread of its own at once; `wait()` returns its result.
///
/// For work that blocks on the database while the calling thread does other database work on
/// another connection. A dedicated thread (not a dispatch queue) so that it starts at once even
/// when the queue's threads are busy validating the next batch.
final class BackgroundWork<Value>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<Value, Error>?
    // Only the started thread calls it, once; the caller's values cross threads by design (the
    // caller does not touch them until `wait()` returns).
    private var body: (() throws -> Value)?

    init(_ body: @escaping () throws -> Value) {
        self.body = body
        let thread = Thread { [self] in
            let work = self.body
            self.body = nil
            self.outcome = Result { try work!() }
            self.done.signal()
        }
        thread.start()
    }

    /// Blocks until the work has finished. Call it exactly once.
    func wait() -> Result<Value, Error> {
        done.wait()
        return outcome!
    }
}
