import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file the server reads (pg_hba.conf, the saved listen settings) so that a crash
/// leaves either the old or the new contents, never half of them, and the file already has its
/// owner and mode when it appears under its name.
enum ServerFile {
    static func replace(_ url: URL, with contents: String, mode: mode_t, account: ServerAccount) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw LocalClusterError("could not create \(temporary): \(String(cString: strerror(errno)))")
        }
        var failure: String?
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count, failure == nil {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno != EINTR { failure = String(cString: strerror(errno)) }
            } else {
                written += count
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        do {
            if let failure { throw LocalClusterError("could not write \(temporary): \(failure)") }
            try account.takeOwnership(of: temporary, mode: mode)
            guard rename(temporary, url.path) == 0 else {
                throw LocalClusterError("could not replace \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
