import CLibPQ
import Logging

/// Receives server NOTICE/WARNING messages for one connection.
///
/// libpq prints notices to stderr by default, which would interleave with the CLI's own output;
/// routing them to the caller's `Logger` keeps them where the rest of the diagnostics go (at
/// debug level: they are informational, e.g. "relation already exists, skipping").
final class NoticeSink {
    let logger: Logger?

    init(logger: Logger?) { self.logger = logger }

    func install(on connection: OpaquePointer) {
        // The connection object keeps `self` alive (it owns the sink), so an unretained pointer
        // is valid for as long as libpq can call back.
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = PQsetNoticeReceiver(connection, noticeReceiver, context)
    }

    func receive(_ result: OpaquePointer) {
        guard let logger else { return }
        func field(_ name: DiagnosticField) -> String? {
            PQresultErrorField(result, name.code).map { String(cString: $0) }
        }
        var metadata: Logger.Metadata = [:]
        if let severity = field(.severity) { metadata["postgres.severity"] = .string(severity) }
        if let sqlState = field(.sqlState) { metadata["postgres.sqlstate"] = .string(sqlState) }
        let message = field(.messagePrimary) ?? String(cString: PQresultErrorMessage(result)).trimmingWhitespace()
        logger.debug("postgres: \(message)", metadata: metadata)
    }
}

/// A C function pointer cannot capture context, so the sink arrives through `arg`.
private func noticeReceiver(_ arg: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let arg, let result else { return }
    Unmanaged<NoticeSink>.fromOpaque(arg).takeUnretainedValue().receive(result)
}
