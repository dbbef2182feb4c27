/// Why a local cluster operation failed, in words that say what to do next.
///
/// Failures of `initdb`/`pg_ctl` carry the command line, its output and the tail of the server
/// log, because the reason (port in use, bad permissions, shared memory) is only ever there.
public struct LocalClusterError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
