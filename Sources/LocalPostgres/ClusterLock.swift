import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `DIR/cluster.lock`, held around init, start, stop and removal.
///
/// Two processes (or threads: each lock opens its own file description) starting the same
/// cluster would otherwise race `initdb` into the same directory or start two postmasters. The
/// kernel drops the lock if the holder dies, so a crash never leaves it stuck.
final class ClusterLock {
    private let descriptor: Int32

    /// Blocks until the lock is held.
    init(path: String) throws {
        // O_CLOEXEC: the postmaster started while we hold the lock must not inherit it.
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LocalClusterError("could not open the cluster lock file \(path): \(String(cString: strerror(errno)))")
        }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw LocalClusterError("could not lock \(path): \(reason)")
        }
        self.descriptor = descriptor
    }

    deinit {
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
