import CardCore
import Foundation
import Testing

/// `--jobs N` must mean N agencies in flight at once, whatever the core count: every worker here
/// waits until all of them have started, which can only happen if they all run at the same time.
/// (`DispatchQueue.concurrentPerform` on a two-core machine runs two at a time, and this test
/// then fails at the barrier's safety timeout.)
struct ConcurrentWorkersTests {
    final class Barrier: @unchecked Sendable {
        // @unchecked: every field is guarded by `condition`.
        private let condition = NSCondition()
        private var arrived = 0
        private var workers = Set<Int>()
        private let expected: Int

        init(expected: Int) { self.expected = expected }

        /// Arrives, then waits for the others; false if they did not all arrive in time.
        func arriveAndWait(worker: Int, timeout: TimeInterval) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            arrived += 1
            workers.insert(worker)
            condition.broadcast()
            let deadline = Date(timeIntervalSinceNow: timeout)
            while arrived < expected {
                if !condition.wait(until: deadline) { return arrived >= expected }
            }
            return true
        }

        var distinctWorkers: Int { condition.lock(); defer { condition.unlock() }; return workers.count }
    }

    final class Flags: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var values: [Bool] = []
        func append(_ value: Bool) { lock.lock(); values.append(value); lock.unlock() }
        var all: [Bool] { lock.lock(); defer { lock.unlock() }; return values }
    }

    @Test("every worker runs at the same time, also with more workers than cores", arguments: [8, 24])
    func everyWorkerRunsAtOnce(count: Int) {
        let barrier = Barrier(expected: count)
        let met = Flags()
        ConcurrentWorkers.run(count) { worker in
            met.append(barrier.arriveAndWait(worker: worker, timeout: 60))
        }
        #expect(met.all.count == count)
        #expect(met.all.allSatisfy { $0 }, "some workers never saw all \(count) running (cores: \(ProcessInfo.processInfo.activeProcessorCount))")
        #expect(barrier.distinctWorkers == count)
    }

    @Test("one worker runs on the calling thread; zero still runs once")
    func singleWorker() {
        let caller = pthread_self()
        final class Box: @unchecked Sendable { var sameThread = false; var calls = 0 }
        let box = Box()
        ConcurrentWorkers.run(1) { _ in box.sameThread = pthread_equal(pthread_self(), caller) != 0; box.calls += 1 }
        ConcurrentWorkers.run(0) { _ in box.calls += 1 }
        #expect(box.sameThread)
        #expect(box.calls == 2)
    }

    @Test("a worker thread has the stack the deep parsers need")
    func workerStack() {
        final class Sizes: @unchecked Sendable { let lock = NSLock(); var values: [Int] = [] }
        let seen = Sizes()
        ConcurrentWorkers.run(2) { _ in
            seen.lock.lock(); seen.values.append(Thread.current.stackSize); seen.lock.unlock()
        }
        #expect(seen.values.count == 2)
        #expect(seen.values.allSatisfy { $0 >= ConcurrentWorkers.stackSize })
    }
}
