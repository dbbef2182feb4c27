import CardCore
import CardDatabase
import Foundation
import PostgresClient
import Testing
import TestSupport
@testable import CardSync

// MARK: - The real executable

/// Runs the `cardsync` executable that `swift build`/`swift test` put next to the test bundle.
enum CardsyncCLI {
    struct Output {
        var status: Int32
        /// Killed by a signal (SIGKILL in the crash tests).
        var signaled: Bool
        var stdout: String
        var stderr: String
    }

    /// `.build*/<triple>/debug/cardsync`, found from the test process's own path.
    static let executable: URL? = {
        let fm = FileManager.default
        if let given = ProcessInfo.processInfo.environment["CARDSYNC_EXECUTABLE"], fm.isExecutableFile(atPath: given) {
            return URL(fileURLWithPath: given)
        }
        var starts: [URL] = []
        if let first = CommandLine.arguments.first {
            starts.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        starts.append(Bundle.main.bundleURL.resolvingSymlinksInPath())
        if let exe = Bundle.main.executableURL { starts.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for start in starts {
            var dir = start
            for _ in 0..<3 {
                let candidate = dir.appendingPathComponent("cardsync")
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                   fm.isExecutableFile(atPath: candidate.path) {
                    return candidate
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }()

    struct NotBuilt: Error, CustomStringConvertible {
        var description: String {
            "the cardsync executable was not found next to the test bundle (\(CommandLine.arguments.first ?? "?")); build it with swift build, or set CARDSYNC_EXECUTABLE"
        }
    }

    /// A started process whose output goes to files in `scratch`.
    final class Running: @unchecked Sendable {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL

        /// `environment` is added to the test process's own (e.g. `CARDSYNC_CRASH_AT`).
        init(_ arguments: [String], scratch: URL, environment extra: [String: String] = [:]) throws {
            guard let executable = CardsyncCLI.executable else { throw NotBuilt() }
            let id = UUID().uuidString
            stdoutURL = scratch.appendingPathComponent("cli-\(id).out")
            stderrURL = scratch.appendingPathComponent("cli-\(id).err")
            for url in [stdoutURL, stderrURL] where !FileManager.default.createFile(atPath: url.path, contents: nil) {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
            process = Process()
            process.executableURL = executable
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["CARDSYNC_DATABASE_URL"] = nil
            environment["CARDSYNC_HOME"] = scratch.appendingPathComponent("home").path
            environment["CARDSYNC_LOG_LEVEL"] = nil
            for (key, value) in extra { environment[key] = value }
            process.environment = environment
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
            process.standardError = try FileHandle(forWritingTo: stderrURL)
            try process.run()
        }

        func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

        func wait() -> Output {
            process.waitUntilExit()
            return Output(status: process.terminationStatus,
                          signaled: process.terminationReason == .uncaughtSignal,
                          stdout: String(decoding: QueueFiles.bytes(stdoutURL), as: UTF8.self),
                          stderr: String(decoding: QueueFiles.bytes(stderrURL), as: UTF8.self))
        }
    }

    static func start(_ arguments: [String], scratch: URL, environment: [String: String] = [:]) throws -> Running {
        try Running(arguments, scratch: scratch, environment: environment)
    }

    static func run(_ arguments: [String], scratch: URL, environment: [String: String] = [:]) throws -> Output {
        try start(arguments, scratch: scratch, environment: environment).wait()
    }

    /// One agency's generated queue (faulty lines included) and the bureau's decisions for it,
    /// under `directory`: the workload of the kill tests.
    static func generateOneQueue(in directory: URL, seed: String) throws -> (queue: QueueDirectory, decisions: URL) {
        let generated = directory.appendingPathComponent("generated")
        let generate = try run(["generate", generated.path, "--agencies", "1", "--applications", "110",
                                "--months", "2", "--seed", seed, "--faults", "0.04", "--end", today], scratch: directory)
        guard generate.status == 0 else { throw SyncError("cardsync generate failed: \(generate.stderr)") }
        // `generate` writes the queues into their own folder, the decisions beside it.
        guard let queue = try Drill.queues(under: generated).first else { throw SyncError("no queue was generated") }
        return (QueueDirectory(queue), try Drill.decisionsFile(under: generated))
    }

    /// Today's date in UTC as YYYY-MM-DD: a `generate --end` whose events all lie in the past.
    static var today: String {
        let now = Timestamp.now.civilDate(offsetSeconds: 0)
        return String(format: "%04d-%02d-%02d", now.year, now.month, now.day)
    }
}
