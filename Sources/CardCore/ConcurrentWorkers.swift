import Foundation

/// Runs a fixed number of workers, each on a thread of its own, all at the same time.
///
/// `DispatchQueue.concurrentPerform` is the wrong tool for work that mostly waits on the
/// network: it runs at most one iteration per core, so `--jobs 8` on a two-core machine would
/// sync two agencies at a time. Here every worker gets a real thread, whatever the core count.
public enum ConcurrentWorkers {
    /// The stack each worker thread gets. Foundation's threads default to less than the main
    /// thread's; the JSON parser and the lifecycle fold must not run out sooner on a worker.
    public static let stackSize = 8 << 20

    /// Calls `body(worker)` for every `worker` in `0..<count` at once and returns when all of
    /// them have returned. A `count` of 1 (or less) runs the body on the calling thread.
    public static func run(_ count: Int, _ body: @escaping @Sendable (_ worker: Int) -> Void) {
        guard count > 1 else {
            body(0)
            return
        }
        let finished = DispatchGroup()
        for worker in 0..<count {
            finished.enter()
            let thread = Thread {
                body(worker)
                finished.leave()
            }
            thread.stackSize = stackSize
            thread.name = "cardsync-worker-\(worker)"
            thread.start()
        }
        finished.wait()
    }
}
