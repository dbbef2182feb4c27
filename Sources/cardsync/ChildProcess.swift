import CardCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs this same executable as a child process and measures it: wall time and peak resident
/// memory from the kernel's accounting (`wait4`), so benchmarks measure the real command.
struct ChildProcess {
    struct Outcome {
        var status: Int32
        var seconds: Double
        /// Peak resident set size of the child, in bytes.
        var maxRSSBytes: Int
        var stdout: String
    }

    /// The path of the running cardsync executable.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// `VmHWM` of a running process, in KiB.
    static func highWaterMarkKiB(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// Runs `cardsync ARGS...`; stdout is captured to a temporary file, stderr passes through.
    static func runCardsync(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("cardsync-child-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let fd = open(out.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CommandFailure("cannot create \(out.path): \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_addclose(&actions, fd)
        let argv = [selfPath] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = envStrings.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        let started = ContinuousClock.now
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, selfPath, &actions, nil, &cArgs, &cEnv)
        close(fd)
        guard rc == 0 else { throw CommandFailure("cannot start \(selfPath): \(String(cString: strerror(rc)))") }
        // Peak memory is read from the child's own /proc status (VmHWM) while it runs: the
        // kernel's ru_maxrss for a spawned child also counts the parent's memory at spawn time.
        var status: Int32 = 0
        var peakKiB = 0
        while true {
            if let hwm = Self.highWaterMarkKiB(pid) { peakKiB = max(peakKiB, hwm) }
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR {
                throw CommandFailure("waiting for the child failed: \(String(cString: strerror(errno)))")
            }
            usleep(20_000)
        }
        let elapsed = ContinuousClock.now - started
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exitStatus, seconds: elapsed.seconds,
                       maxRSSBytes: peakKiB * 1024,
                       stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
