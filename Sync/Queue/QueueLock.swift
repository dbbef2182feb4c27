import Foundation
import Synchronization

/// An exclusive `flock` on `DIR/.cardsync.lock`, held by `cardsync sync` and
/// `cardsync queue append` while they work on a queue.
///
/// The lock belongs to the open file, so it is released when `release()` is called, when the
/// object is deallocated, or when the process dies (a crashed sync never leaves a stale lock).
/// Two `QueueLock`s on the same directory exclude each other even within one process.
public final class QueueLock: Sendable {
    public let directory: QueueDirectory
    /// The open lock file while the lock is held. A sync job may release the lock on another
    /// thread than the one that took it, so the file is behind a Mutex.
    private let file: Mutex<QueueFile?>

    private init(directory: QueueDirectory, file: sending QueueFile) {
        self.directory = directory
        self.file = Mutex(file)
    }

    deinit { release() }

    /// Takes the lock. Without `timeout` it fails at once when another process holds it;
    /// with one it retries every 50 ms until the timeout has passed.
    public static func acquire(_ directory: QueueDirectory, timeout: Duration? = nil) throws(QueueError) -> QueueLock {
        let file = try QueueFile.open(directory.lockFile.path, .readWriteCreate, what: "queue lock file")
        let start = ContinuousClock.now
        while true {
            if try file.tryLockExclusive() { return QueueLock(directory: directory, file: file) }
            guard let timeout, ContinuousClock.now - start < timeout else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        file.close()
        throw QueueError(.locked,
                         "another cardsync sync holds the queue lock for \(directory.path) (or a queue append is running); wait for it to finish, then run the command again",
                         path: directory.lockFile.path)
    }

    /// Whether this object still holds the lock.
    public var isHeld: Bool { file.withLock { $0 != nil } }

    /// Releases the lock (closing the lock file); calling it again does nothing.
    public func release() {
        file.withLock { $0.take() }?.close()
    }
}
