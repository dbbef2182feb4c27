import CardCore
import Foundation
import LocalPostgres
#if canImport(Glibc)
import Glibc
#endif

/// Runs this same executable as a child process and measures it: wall time, and peak resident
/// memory sampled from the child's /proc status, so benchmarks measure the real command.
/// Starting and reaping is `Subprocess`'s (LocalPostgres), the one spawning primitive.
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

    /// Starts `cardsync ARGS...` with our environment plus `environment`, returning at once.
    static func startCardsync(_ arguments: [String], environment: [String: String] = [:],
                              output: Subprocess.Output) throws -> Subprocess.Child {
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        return try Subprocess.start(URL(fileURLWithPath: selfPath), arguments, environment: merged, output: output)
    }

    /// Waits for `child`, handing its peak memory so far (KiB) to `sample` every 20 ms while it
    /// runs. Sampled rather than taken from `wait4`'s ru_maxrss: for a spawned child the kernel
    /// also counts the parent's memory at spawn time. Returns the exit status (128 + signal).
    static func waitSamplingPeak(_ child: Subprocess.Child, _ sample: (Int) -> Void) throws -> Int32 {
        while true {
            if let hwm = highWaterMarkKiB(child.pid) { sample(hwm) }
            if let status = try child.exitStatusIfFinished() { return status }
            usleep(20_000)
        }
    }

    /// Runs `cardsync ARGS...`; stdout is captured to a temporary file, stderr passes through.
    static func runCardsync(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        let started = ContinuousClock.now
        let child = try startCardsync(arguments, environment: environment, output: .standardOutput)
        var peakKiB = 0
        let status = try waitSamplingPeak(child) { peakKiB = max(peakKiB, $0) }
        let elapsed = ContinuousClock.now - started
        return Outcome(status: status, seconds: elapsed.seconds, maxRSSBytes: peakKiB * 1024,
                       stdout: child.capturedOutput())
    }
}
