import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This executable started as a background child (a `merge --follow` service in a benchmark):
/// its peak memory is sampled while it runs, and it is stopped with SIGTERM as systemd would.
final class RunningChild: @unchecked Sendable {
    // @unchecked: `peakKiB` and `exitStatus` are guarded by `lock`; the sampler thread is the only writer.
    let pid: pid_t
    private let lock = NSLock()
    private var peakKiB = 0
    private var exitStatus: Int32?
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `cardsync ARGS...` with stdout and stderr discarded (its logs are not the measurement).
    init(_ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let path = ChildProcess.selfPath
        var cArgs = ([path] + arguments).map { strdup($0) } + [nil]
        var cEnv = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw CommandFailure("cannot start \(path): \(String(cString: strerror(rc)))") }
        pid = child
        Thread { [self] in self.sample() }.start()
    }

    private func sample() {
        var status: Int32 = 0
        while true {
            if let hwm = ChildProcess.highWaterMarkKiB(pid) {
                lock.lock(); peakKiB = max(peakKiB, hwm); lock.unlock()
            }
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || (done < 0 && errno != EINTR) { break }
            usleep(20_000)
        }
        lock.lock()
        exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
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
