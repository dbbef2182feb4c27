import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `cardsync` with its stderr on a pseudo-terminal, as a clerk at a terminal sees it (stdout
/// goes to a file as in `CLIRunner`): what a progress bar draws only on a terminal can be checked.
enum PseudoTerminal {
    struct Output {
        var status: Int32
        var stdout: String
        /// Everything written to the terminal, escape sequences and carriage returns included.
        var terminal: String
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let master = cPosixOpenpt(O_RDWR | O_NOCTTY)
        guard master >= 0, cGrantpt(master) == 0, cUnlockpt(master) == 0, let name = cPtsname(master) else {
            throw CLIError("cannot open a pseudo-terminal: \(String(cString: strerror(errno)))")
        }
        let slavePath = String(cString: name)
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("pty-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: outURL) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, slavePath, O_RDWR | O_NOCTTY, 0)
        posix_spawn_file_actions_addclose(&actions, master)
        var env = ProcessInfo.processInfo.environment
        env["CARDSYNC_DATABASE_URL"] = nil
        env["CARDSYNC_LOG_LEVEL"] = nil
        for (k, v) in environment { env[k] = v }
        let path = CLIRunner.executable
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }

        // Read the terminal while the child runs: a full pseudo-terminal buffer would block it.
        let collected = Collected()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(master, &buffer, buffer.count)
                if n > 0 { collected.append(buffer[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
            }
            collected.done.signal()
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        guard rc == 0 else { close(master); throw CLIError("cannot start \(path): \(String(cString: strerror(rc)))") }
        reader.start()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // Once the child is gone and nothing holds the terminal's other end, read() ends (EIO).
        _ = collected.done.wait(timeout: .now() + 10)
        close(master)
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: exit, stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      terminal: collected.text)
    }

    private final class Collected: @unchecked Sendable {
        // @unchecked: `bytes` is guarded by `lock`.
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        let done = DispatchSemaphore(value: 0)
        func append(_ chunk: ArraySlice<UInt8>) { lock.lock(); bytes += chunk; lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: bytes, as: UTF8.self) }
    }
}

// glibc declares these only with _XOPEN_SOURCE, which the Glibc module is not built with.
@_silgen_name("posix_openpt") private func cPosixOpenpt(_ flags: Int32) -> Int32
@_silgen_name("grantpt") private func cGrantpt(_ fd: Int32) -> Int32
@_silgen_name("unlockpt") private func cUnlockpt(_ fd: Int32) -> Int32
@_silgen_name("ptsname") private func cPtsname(_ fd: Int32) -> UnsafeMutablePointer<CChar>?
