/// Why a local cluster operation failed, in words that say what to do next.
///
/// Failures of `initdb`/`pg_ctl` carry the command line, its output and the tail of the server
/// log, because the reason (port in use, bad permissions, shared memory) is only ever there.
public struct LocalClusterError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The failure underneath (a program's exit, a file system error), kept whole for callers
    /// that need more than the words: `message` already says what it means.
    public var cause: (any Error)?

    public init(_ message: String, cause: (any Error)? = nil) {
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
