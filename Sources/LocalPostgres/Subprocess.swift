import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the cluster's helper programs and reports failures with the command and its output.
enum Subprocess {
    /// Runs `executable` with `arguments`, as `user` via `runuser` when given (root only),
    /// returning combined stdout and stderr. Throws when the exit status is not 0.
    @discardableResult
    static func run(
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

    static func runAllowingFailure(
        _ executable: URL, _ arguments: [String], asUser user: String? = nil,
        currentDirectory: URL? = nil
    ) throws -> (status: Int32, output: String) {
        var argv: [String]
        if let user {
            argv = [try runuser().path, "-u", user, "--", executable.path] + arguments
        } else {
            argv = [executable.path] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LC_MESSAGES"] = "C"  // Error text we show and match on stays in English.
        let output = try OutputCapture()
        let status = try spawnAndWait(
            argv, environment: environment.map { "\($0.key)=\($0.value)" },
            currentDirectory: currentDirectory?.path, outputDescriptor: output.descriptor)
        return (status, output.contents())
    }

    /// posix_spawn + waitpid rather than Foundation's `Process`: `pg_ctl start` leaves the
    /// postmaster running with descriptors inherited from its parent, and `Process` (whose exit
    /// detection and output pipes rely on descriptors reaching EOF) then waits forever. Here the
    /// child gets only stdin (/dev/null) and stdout/stderr (a temporary file); every other
    /// descriptor, such as other threads' database sockets, is closed in the child.
    private static func spawnAndWait(
        _ argv: [String], environment: [String], currentDirectory: String?, outputDescriptor: Int32
    ) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 2)
        if let closeFrom = GlibcExtensions.addCloseFrom {
            _ = closeFrom(&actions, 3)
        }
        if let currentDirectory, let addChdir = GlibcExtensions.addChdir {
            _ = addChdir(&actions, currentDirectory)
        }
        var pid: pid_t = 0
        let result = withCStringArray(argv) { argvPointers in
            withCStringArray(environment) { environmentPointers in
                posix_spawn(&pid, argvPointers[0]!, &actions, nil, argvPointers, environmentPointers)
            }
        }
        guard result == 0 else {
            throw LocalClusterError("could not run `\(argv.joined(separator: " "))`: \(String(cString: strerror(result)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else {
                throw LocalClusterError("waiting for `\(argv[0])` failed: \(String(cString: strerror(errno)))")
            }
        }
        // WIFEXITED / WEXITSTATUS are macros; decode the wait status by hand.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
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
/// nothing is left behind, readable through the open handle.
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
