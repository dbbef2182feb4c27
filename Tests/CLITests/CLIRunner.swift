import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `cardsync` executable (it sits next to the test bundle in the build folder),
/// as an operator would, and captures what it prints.
struct CLIRunner {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: me).deletingLastPathComponent()
        // The test binary may sit inside an .xctest bundle directory.
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("cardsync").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("cardsync").path
    }

    /// Runs `cardsync ARGS` with extra environment; database variables of the caller are removed
    /// so that each test says exactly which database it means.
    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> Output {
        let tmp = FileManager.default.temporaryDirectory
        let id = UUID().uuidString
        let outURL = tmp.appendingPathComponent("cli-\(id).out"), errURL = tmp.appendingPathComponent("cli-\(id).err")
        let inURL = tmp.appendingPathComponent("cli-\(id).in")
        defer { [outURL, errURL, inURL].forEach { try? FileManager.default.removeItem(at: $0) } }
        try (stdin ?? "").write(to: inURL, atomically: true, encoding: .utf8)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inURL.path, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var env = ProcessInfo.processInfo.environment
        env["CARDSYNC_DATABASE_URL"] = nil
        env["CARDSYNC_LOG_LEVEL"] = nil
        for (k, v) in environment { env[k] = v }
        let path = executable
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        guard rc == 0 else { throw CLIError("cannot start \(path): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: exit, stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
