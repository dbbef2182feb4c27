import Foundation
import Synchronization

/// A private directory under /tmp that disappears with the object (or on `remove()`).
///
/// Short /tmp paths also keep Unix socket paths placed inside under their length limit.
/// The directory is mode 711 (others may pass through, not list), so that when tests run as
/// root a `LocalCluster` placed inside can still be reached by the `postgres` user.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "cardsync") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        chmod(created, 0o711)
        url = URL(fileURLWithPath: String(cString: created))
    }

    public var path: String { url.path }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    deinit { remove() }

    /// A directory that is removed when the test process exits, for a fixture that lives in a
    /// `static let`: Swift never deinitialises those, so such a directory would otherwise stay in
    /// /tmp after every run.
    public static func untilExit(prefix: String) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory(prefix: prefix)
        removedAtExit.withLock { paths in
            if paths.isEmpty { atexit { TemporaryDirectory.removeAtExit() } }
            paths.append(directory.path)
        }
        return directory
    }

    private static let removedAtExit = Mutex<[String]>([])

    private static func removeAtExit() {
        for path in removedAtExit.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
