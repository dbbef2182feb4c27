import Foundation

/// Why a queue operation failed: a code to match on, a message that says what went wrong and
/// what to do, the path involved, and the failing system call and errno when there is one.
public struct QueueError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A system call failed (open, read, write, fsync, rename, ...).
        case io
        /// The directory is not a queue: agency.json is missing.
        case notAQueue = "not_a_queue"
        /// agency.json exists but is not valid (bad JSON, wrong format, bad code ...).
        case badAgencyFile = "bad_agency_file"
        /// `queue init` for an agency other than the one already in agency.json.
        case agencyMismatch = "agency_mismatch"
        /// Another process holds the queue lock.
        case locked
        /// state.json cannot be read.
        case badState = "bad_state"
        /// A complete inbox.jsonl line is not an inbox entry.
        case badInbox = "bad_inbox"
        /// outbox.jsonl is shorter than the checkpoint says was already read.
        case outboxTruncated = "outbox_truncated"
        /// An input that cannot be used (for example an agency with an invalid code).
        case invalidArgument = "invalid_argument"
    }

    public var code: Code
    public var message: String
    public var path: String
    /// The failing system call, e.g. `fsync`.
    public var syscall: String?
    public var errno: Int32?

    public init(_ code: Code, _ message: String, path: String, syscall: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.syscall = syscall
        self.errno = errno
    }

    public var description: String {
        guard let syscall else { return message }
        if let errno { return "\(message) (\(syscall): \(QueueFile.errorText(errno)))\(Self.remedy(errno))" }
        return "\(message) (\(syscall))"
    }

    /// What to do about the failures an operator can fix: cli.md asks exit-1 messages to name
    /// the cause and what to do, and "No space left on device" alone does not say the work can
    /// simply be run again (found with a full and a read-only queue directory).
    static func remedy(_ code: Int32) -> String {
        switch code {
        case ENOSPC, EDQUOT: "; free space on that file system, then run the command again"
        case EROFS: "; the file system is mounted read-only: make it writable, then run the command again"
        default: ""
        }
    }
}
