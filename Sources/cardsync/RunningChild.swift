import Foundation
import LocalPostgres
#if canImport(Glibc)
import Glibc
#endif

/// This executable started as a background child (a `merge --follow` service in a benchmark):
/// its peak memory is sampled while it runs, and it is stopped with SIGTERM as systemd would.
final class RunningChild: @unchecked Sendable {
    // @unchecked: `peakKiB` and `exitStatus` are guarded by `lock`; the sampler thread is the only
    // writer, and the only user of `child` after `init`.
    let pid: pid_t
    private let child: Subprocess.Child
    private let lock = NSLock()
    private var peakKiB = 0
    private var exitStatus: Int32?
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `cardsync ARGS...` with stdout discarded (its logs are not the measurement);
    /// stderr passes through, so a service that fails says why.
    init(_ arguments: [String]) throws {
        child = try ChildProcess.startCardsync(arguments, output: .discardStandardOutput)
        pid = child.pid
        Thread { [self] in self.sample() }.start()
    }

    private func sample() {
        // A failed waitpid (the child is gone from under us) ends the watch with status -1.
        let status = (try? ChildProcess.waitSamplingPeak(child) { hwm in
            lock.lock(); peakKiB = max(peakKiB, hwm); lock.unlock()
        }) ?? -1
        lock.lock()
        exitStatus = status
        lock.unlock()
        finished.signal()
    }

    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return exitStatus == nil }

    /// SIGTERM, then waits; returns the exit status and the peak resident memory in bytes.
    func stop() -> (status: Int32, peakBytes: Int) {
        kill(pid, SIGTERM)
        finished.wait()
        lock.lock(); defer { lock.unlock() }
        return (exitStatus ?? -1, peakKiB * 1024)
    }
}
