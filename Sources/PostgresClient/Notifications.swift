import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One `NOTIFY` received on a channel this session listens to.
public struct Notification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

extension Connection {
    /// Starts listening on `channel` (a name, quoted here; never a value from outside).
    public func listen(_ channel: String) throws {
        try executeScript("LISTEN \(try escapeIdentifier(channel))")
    }

    /// Waits until at least one notification has arrived or `timeout` has passed, and returns
    /// what arrived (empty on timeout). Must be called outside a statement: the session is idle
    /// while it waits, so the server can deliver notifications as their transactions commit.
    public func waitForNotifications(timeout: Duration) throws -> [Notification] {
        var received = takeNotifications()
        if !received.isEmpty { return received }
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw PostgresError(kind: .connection, message: "the connection to \(target) is closed") }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno != EINTR {
            throw PostgresError(kind: .connection, message: "waiting for notifications from \(target) failed: \(String(cString: strerror(errno)))")
        }
        if ready > 0 {
            guard PQconsumeInput(handle) == 1 else {
                throw PostgresError(kind: .connection, message: "the connection to \(target) broke while waiting for notifications: \(connectionErrorMessage(handle))")
            }
        }
        received = takeNotifications()
        return received
    }

    /// The notifications libpq has already read from the socket.
    private func takeNotifications() -> [Notification] {
        var out: [Notification] = []
        while let notify = PQnotifies(handle) {
            out.append(Notification(channel: String(cString: notify.pointee.relname),
                                    payload: String(cString: notify.pointee.extra),
                                    senderPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return out
    }
}
