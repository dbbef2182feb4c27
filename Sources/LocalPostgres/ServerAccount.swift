import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The account `initdb`, `pg_ctl` and the server run as.
///
/// PostgreSQL refuses to run as root. When cardsync itself runs as root (containers, CI), the
/// programs run as the `postgres` system user through `runuser`, and the cluster's directories
/// are handed to that user. Otherwise they run as the current user, directly.
struct ServerAccount {
    /// The user to switch to, or nil to run as ourselves.
    let switchToUser: String?
    let uid: uid_t
    let gid: gid_t

    static func forCurrentProcess() throws -> ServerAccount {
        guard geteuid() == 0 else {
            return ServerAccount(switchToUser: nil, uid: geteuid(), gid: getegid())
        }
        guard let entry = getpwnam("postgres") else {
            throw LocalClusterError(
                "running as root, PostgreSQL must run as the 'postgres' system user, which does not exist; install the postgresql package (apt-get install postgresql) or run cardsync as a normal user")
        }
        return ServerAccount(switchToUser: "postgres", uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// Makes `path` belong to the server account with the given mode (700 for directories:
    /// PostgreSQL insists its data directory is private).
    func takeOwnership(of path: String, mode: mode_t) throws {
        if switchToUser != nil, chown(path, uid, gid) != 0 {
            throw LocalClusterError("could not give \(path) to the postgres user: \(String(cString: strerror(errno)))")
        }
        if chmod(path, mode) != 0 {
            throw LocalClusterError("could not set permissions of \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Checks that the server account can use `directory` (root only: a directory under
    /// `/root`, mode 700, is invisible to `postgres` however its own permissions are set).
    /// Names the first ancestor that blocks it.
    func checkCanReach(_ directory: URL) throws {
        guard let user = switchToUser else { return }
        let test = URL(fileURLWithPath: "/usr/bin/test")
        let (status, _) = try Subprocess.runAllowingFailure(test, ["-w", directory.path, "-a", "-x", directory.path], asUser: user)
        if status == 0 { return }
        var blocking = directory.path
        var ancestors: [URL] = []
        var current = directory.deletingLastPathComponent()
        while current.path != "/" {
            ancestors.insert(current, at: 0)
            current = current.deletingLastPathComponent()
        }
        for ancestor in ancestors {
            let (ok, _) = try Subprocess.runAllowingFailure(test, ["-x", ancestor.path], asUser: user)
            if ok != 0 {
                blocking = ancestor.path
                break
            }
        }
        throw LocalClusterError(
            "the postgres user cannot reach the cluster directory \(directory.path): \(blocking) is not accessible to it. When running as root, PostgreSQL runs as 'postgres', so put the cluster outside private directories such as /root (for example under /var/lib/cardsync or /tmp)")
    }
}
