import Foundation
import LocalPostgres
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// This executable started as a background child (a `merge --follow` service in a benchmark):
/// its peak memory is sampled while it runs, and it is stopped with SIGTERM as systemd would.
final class RunningChild: Sendable {
    /// What the sampler thread has seen: written by it, read by `stop()` and `isRunning`. The
    /// child itself (not thread-safe) waits here until the sampler takes it, its only user.
    private struct Watch {
        var child: Subprocess.Child?
        var peakKiB = 0
        var exitStatus: Int32?
    }

    let pid: pid_t
    private let watch: Mutex<Watch>
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `cardsync ARGS...` with stdout discarded (its logs are not the measurement);
    /// stderr passes through, so a service that fails says why.
    init(_ arguments: [String]) throws {
        let child = try ChildProcess.startCardsync(arguments, output: .discardStandardOutput)
        pid = child.pid
        watch = Mutex(Watch(child: child))
        Thread { [self] in self.sample() }.start()
    }

    private func sample() {
        guard let child = watch.withLock({ $0.child.take() }) else { return }
        // A failed waitpid (the child is gone from under us) ends the watch with status -1.
        let status = (try? ChildProcess.waitSamplingPeak(child) { hwm in
            watch.withLock { $0.peakKiB = max($0.peakKiB, hwm) }
        }) ?? -1
        watch.withLock { $0.exitStatus = status }
        finished.signal()
    }

    var isRunning: Bool { watch.withLock { $0.exitStatus == nil } }

    /// SIGTERM, then waits; returns the exit status and the peak resident memory in bytes.
    func stop() -> (status: Int32, peakBytes: Int) {
        kill(pid, SIGTERM)
        finished.wait()
        return watch.withLock { ($0.exitStatus ?? -1, $0.peakKiB * 1024) }
    }
}
