import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way this package and the `cardsync` executable start programs: the cluster's helpers
/// (`initdb`, `pg_ctl`, `openssl`, `test`), and cardsync itself as a benchmark's child.
///
/// Built on posix_spawn + waitpid rather than Foundation's `Process`: `pg_ctl start` leaves the
/// postmaster running with descriptors inherited from its parent, and `Process` (whose exit
/// detection and output pipes rely on descriptors reaching EOF) then waits forever. Here the
/// child gets only stdin (/dev/null) and stdout/stderr as `Output` says; every other descriptor,
/// such as other threads' database sockets, is closed in the child.
public enum Subprocess {
    /// Where a child's standard output and standard error go. Standard input is always
    /// /dev/null: no program started here reads ours, and several may run at once.
    public enum Output: Sendable {
        /// Both into one temporary file, in the order written, read back with
        /// `Child.capturedOutput()`: a helper's error text makes sense only next to what it
        /// printed before it.
        case combined
        /// Standard output into a temporary file, standard error to ours: for a child whose
        /// output is the result (a `--json` document) while its warnings should show as usual.
        case standardOutput
        /// Standard output to /dev/null, standard error to ours: for a background service
        /// whose output is not wanted but whose errors are.
        case discardStandardOutput
    }

    /// A started program. Reap it with `wait()` or `exitStatusIfFinished()`; until then it stays
    /// a zombie after exiting. Not for use from several threads at once.
    public final class Child {
        public let pid: pid_t
        /// The command as a shell would read it (`runuser -u USER -- …` when run as another user).
        public let commandLine: String
        private let capture: OutputCapture?
        private var status: Int32?

        fileprivate init(pid: pid_t, commandLine: String, capture: OutputCapture?) {
            self.pid = pid
            self.commandLine = commandLine
            self.capture = capture
        }

        /// Blocks until the child exits; returns its exit status, or 128 + the signal that ended
        /// it (as a shell's `$?` does, so one number says both).
        public func wait() throws -> Int32 {
            if let status { return status }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 {
                guard errno == EINTR else { throw waitFailure() }
            }
            return reaped(raw)
        }

        /// The exit status (as `wait()` gives it) when the child has exited, nil while it runs;
        /// never blocks, for callers that watch the child while it works.
        public func exitStatusIfFinished() throws -> Int32? {
            if let status { return status }
            var raw: Int32 = 0
            let done = waitpid(pid, &raw, WNOHANG)
            if done == pid { return reaped(raw) }
            if done < 0 && errno != EINTR { throw waitFailure() }
            return nil
        }

        /// What the child wrote to the captured streams so far ("" when nothing is captured).
        public func capturedOutput() -> String { capture?.contents() ?? "" }

        private func reaped(_ raw: Int32) -> Int32 {
            // WIFEXITED / WEXITSTATUS are macros; decode the wait status by hand.
            let signal = raw & 0x7f
            let decoded = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            status = decoded
            return decoded
        }

        private func waitFailure() -> LocalClusterError {
            LocalClusterError("waiting for `\(commandLine)` failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Starts `executable` with `arguments` and returns at once, as `user` via `runuser` when
    /// given (root only), with exactly `environment` and, when given, in `currentDirectory`.
    public static func start(
        _ executable: URL, _ arguments: [String], asUser user: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: URL? = nil, output: Output = .combined
    ) throws -> Child {
        var argv = [executable.path] + arguments
        if let user { argv = [try runuser().path, "-u", user, "--"] + argv }
        let capture = output == .discardStandardOutput ? nil : try OutputCapture()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let capture {
            posix_spawn_file_actions_adddup2(&actions, capture.descriptor, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if output == .combined, let capture {
            posix_spawn_file_actions_adddup2(&actions, capture.descriptor, 2)
        }
        if let closeFrom = GlibcExtensions.addCloseFrom {
            _ = closeFrom(&actions, 3)
        }
        if let currentDirectory, let addChdir = GlibcExtensions.addChdir {
            _ = addChdir(&actions, currentDirectory.path)
        }
        var pid: pid_t = 0
        let result = withCStringArray(argv) { argvPointers in
            withCStringArray(environment.map { "\($0.key)=\($0.value)" }) { environmentPointers in
                posix_spawn(&pid, argvPointers[0]!, &actions, nil, argvPointers, environmentPointers)
            }
        }
        let command = commandLine(executable, arguments, user)
        guard result == 0 else {
            throw LocalClusterError("could not run `\(command)`: \(String(cString: strerror(result)))")
        }
        return Child(pid: pid, commandLine: command, capture: capture)
    }

    /// Runs `executable` with `arguments`, as `user` via `runuser` when given (root only),
    /// returning combined stdout and stderr. Throws when the exit status is not 0, with the
    /// command line and its output in the message.
    @discardableResult
    public static func run(
        _ executable: URL, _ arguments: [String], asUser user: String? = nil,
        currentDirectory: URL? = nil
    ) throws -> String {
        let (status, output) = try runAllowingFailure(executable, arguments, asUser: user, currentDirectory: currentDirectory)
        guard status == 0 else {
            throw LocalClusterError(
                "`\(commandLine(executable, arguments, user))` failed with exit status \(status):\n\(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return output
    }

    /// Runs like `run` and returns the exit status (128 + signal when a signal ended it) with the
    /// combined output, for callers to whom a non-zero status is an answer, not a failure.
    public static func runAllowingFailure(
        _ executable: URL, _ arguments: [String], asUser user: String? = nil,
        currentDirectory: URL? = nil
    ) throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["LC_MESSAGES"] = "C"  // Error text we show and match on stays in English.
        let child = try start(executable, arguments, asUser: user, environment: environment,
                              currentDirectory: currentDirectory, output: .combined)
        let status = try child.wait()
        return (status, child.capturedOutput())
    }

    private static func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    static func commandLine(_ executable: URL, _ arguments: [String], _ user: String?) -> String {
        let command = ([executable.path] + arguments).map(shellQuotedIfNeeded).joined(separator: " ")
        return user.map { "runuser -u \($0) -- \(command)" } ?? command
    }

    /// Single-quotes a word for /bin/sh (pg_ctl passes `-o` through a shell).
    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private static func shellQuotedIfNeeded(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,".contains($0) }
        return safe && !word.isEmpty ? word : shellQuoted(word)
    }

    private static func runuser() throws -> URL {
        for path in ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        throw LocalClusterError("running PostgreSQL as root needs `runuser` (util-linux) to switch to the postgres user, and it was not found")
    }
}

/// A temporary file that collects a child's output; removed from the directory at once so
/// nothing is left behind, readable through the open handle. A file rather than a pipe: a
/// child that writes more than a pipe holds never blocks on a parent that reads only at the end.
private final class OutputCapture {
    let descriptor: Int32

    init() throws {
        var template = Array("/tmp/cardsync-output-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw LocalClusterError("could not create a temporary file for command output: \(String(cString: strerror(errno)))")
        }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    func contents() -> String {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count <= 0 { break }
            data.append(contentsOf: chunk[0..<count])
            offset += off_t(count)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+) and `…_addchdir_np` (2.29+) are
/// not visible through the Glibc module, so they are looked up at run time. Without them the
/// child inherits our descriptors / working directory, which still works, just less tidily.
private enum GlibcExtensions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias Chdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let addCloseFrom: CloseFrom? = lookup("posix_spawn_file_actions_addclosefrom_np")
    static let addChdir: Chdir? = lookup("posix_spawn_file_actions_addchdir_np")

    private static func lookup<F>(_ name: String) -> F? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: F.self)
    }
}
