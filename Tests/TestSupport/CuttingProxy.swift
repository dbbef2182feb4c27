import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of a PostgreSQL Unix socket that cuts connections at chosen
/// points of the protocol: a lost network, mid-COPY or around a COMMIT, for fault tests.
///
/// ```swift
/// let proxy = try CuttingProxy(socket: "/tmp/x/.s.PGSQL.5432",
///                              cuts: [.init(.clientToServer, .message("d", keep: .half))])
/// let uri = proxy.uri(database: "t_123", user: "postgres")
/// ```
///
/// Each direction is read as whole protocol messages (type byte and length), so a cut can name a
/// message ("the first CopyData", "the COMMIT's reply") instead of a byte count that moves with
/// every change of the SQL. A cut forwards what it keeps of the message, then shuts both sockets
/// down; each cut fires once, so later connections (a retry) pass. The server sees a Unix-socket
/// client, which the test clusters trust. URIs from `uri` turn TLS and GSS encryption off: their
/// one-byte replies are not protocol messages. Its threads keep it alive: call `stop()` when done.
public final class CuttingProxy: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`; sockets are owned by their pump threads.
    public enum Direction: Sendable, CustomStringConvertible {
        case clientToServer, serverToClient
        public var description: String { self == .clientToServer ? "client→server" : "server→client" }
    }

    /// How much of the triggering message still goes through before the cut.
    public enum Keep: Sendable {
        case nothing, half, all
    }

    public enum Trigger: Sendable {
        /// After this many bytes in the cut's direction of one connection (counted from its start).
        case afterBytes(Int)
        /// At the `occurrence`-th message (counted over all connections) whose type byte is one of
        /// `types` and whose text (a query's SQL, a command tag) contains `containing`; with
        /// `following`, only in a transaction (on one connection) that ran a statement containing
        /// that text before; a COMMIT's reply counts as part of the transaction it ended.
        case message(_ types: String, containing: String? = nil, following: String? = nil, occurrence: Int = 1, keep: Keep)
    }

    public struct Cut: Sendable {
        public var direction: Direction
        public var trigger: Trigger
        public init(_ direction: Direction, _ trigger: Trigger) {
            self.direction = direction
            self.trigger = trigger
        }
    }

    /// A cut that happened: which connection, where, and what it cut.
    public struct Record: Sendable, CustomStringConvertible {
        public var connection: Int
        public var direction: Direction
        /// Bytes of that direction forwarded before the cut.
        public var offset: Int
        public var message: String
        public var description: String { "connection \(connection), \(direction) after \(offset) bytes, in \(message)" }
    }

    public let port: Int
    private let socketPath: String
    private let listener: Int32
    private let lock = NSLock()
    private var cuts: [(cut: Cut, seen: Int, fired: Bool)]
    private var records: [Record] = []
    private var accepted = 0
    private var transactions: [Int: TransactionState] = [:]
    private var open: [Int: (Int32, Int32)] = [:]
    private var stopped = false

    /// Listens on a free port of 127.0.0.1 and forwards every connection to `socket`.
    public init(socket: String, cuts: [Cut] = []) throws {
        socketPath = socket
        self.cuts = cuts.map { ($0, 0, false) }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Self.failure("socket") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound, listen(fd, 64) == 0 else { close(fd); throw Self.failure("bind/listen") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// A libpq URI through the proxy (plain TCP: TLS and GSS encryption off).
    public func uri(database: String, user: String) -> String {
        "postgresql://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable&gssencmode=disable&connect_timeout=10"
    }

    /// The cuts made so far, in order.
    public var cutsMade: [Record] { lock.withLock { records } }

    /// Stops accepting and cuts every open connection.
    public func stop() {
        let sockets: [(Int32, Int32)] = lock.withLock {
            guard !stopped else { return [] }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            return Array(open.values)
        }
        for (a, b) in sockets {
            shutdown(a, Int32(SHUT_RDWR))
            shutdown(b, Int32(SHUT_RDWR))
        }
    }

    // MARK: - Connections

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // stop() shut the listener down.
            }
            guard let server = connectToServer() else { close(client); continue }
            let index: Int? = lock.withLock {
                guard !stopped else { return nil }
                defer { accepted += 1 }
                open[accepted] = (client, server)
                return accepted
            }
            guard let index else { close(client); close(server); continue }
            // The server→client pump signals when it ends; the other closes both sockets after it.
            let serverSide = DispatchSemaphore(value: 0)
            Thread { [self] in
                pump(from: server, to: client, .serverToClient, connection: index, peer: (client, server))
                serverSide.signal()
            }.start()
            Thread { [self] in
                pump(from: client, to: server, .clientToServer, connection: index, peer: (client, server))
                serverSide.wait()
                lock.withLock { _ = open.removeValue(forKey: index) }
                close(client)
                close(server)
            }.start()
        }
    }

    private func connectToServer() -> Int32? {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8CString)
        guard path.count <= MemoryLayout.size(ofValue: address.sun_path) else { close(fd); return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in path.withUnsafeBytes { raw.copyMemory(from: $0) } }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard connected else { close(fd); return nil }
        return fd
    }

    /// Forwards whole messages from `from` to `to` until either side ends or a cut fires.
    private func pump(from: Int32, to: Int32, _ direction: Direction, connection: Int, peer: (Int32, Int32)) {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset = 0
        // Only the client's first packet (the startup message) has no type byte.
        var typed = direction == .serverToClient
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            pending.append(contentsOf: chunk[0..<count])
            var start = 0
            while let size = Self.messageSize(pending, at: start, typed: typed) {
                let message = Array(pending[start..<(start + size)])
                let type = typed ? message[0] : 0
                let text = Self.text(of: message, typed: typed)
                typed = true
                start += size
                if let keep = decide(direction, connection: connection, type: type, text: text, size: size, offset: offset) {
                    _ = Self.send(to, message[0..<keep])
                    shutdown(peer.0, Int32(SHUT_RDWR))
                    shutdown(peer.1, Int32(SHUT_RDWR))
                    return
                }
                guard Self.send(to, message[...]) else { return }
                offset += size
            }
            pending.removeFirst(start)
        }
        // The sender closed: pass the end on, and let the other direction finish by itself.
        shutdown(to, Int32(SHUT_WR))
    }

    /// Whether a cut fires at this message: nil to forward it whole, else how many of its bytes
    /// go through first.
    private func decide(_ direction: Direction, connection: Int, type: UInt8, text: String, size: Int, offset: Int) -> Int? {
        lock.withLock {
            let statement = direction == .clientToServer && (type == UInt8(ascii: "P") || type == UInt8(ascii: "Q"))
            var state = transactions[connection] ?? TransactionState()
            defer {
                if statement { state.note(text, cuts: cuts.map(\.cut)) }
                transactions[connection] = state
            }
            for index in cuts.indices where !cuts[index].fired && cuts[index].cut.direction == direction {
                var keep: Int?
                switch cuts[index].cut.trigger {
                case .afterBytes(let limit):
                    if offset + size > limit { keep = max(0, limit - offset) }
                case .message(let types, let containing, let after, let occurrence, let how):
                    // A reply belongs to the statement just sent, which may have ended the transaction.
                    let seen = direction == .clientToServer ? state.current : state.current.union(state.ended)
                    guard types.utf8.contains(type), containing.map(text.contains) ?? true,
                          after == nil || seen.contains(index) else { continue }
                    cuts[index].seen += 1
                    guard cuts[index].seen == occurrence else { continue }
                    keep = how == .nothing ? 0 : how == .half ? size / 2 : size
                }
                guard let keep else { continue }
                cuts[index].fired = true
                let what = type == 0 ? "startup" : "'\(Character(Unicode.Scalar(type)))' \(text.prefix(40))"
                records.append(Record(connection: connection, direction: direction, offset: offset + keep,
                                      message: "\(what) of \(size) bytes"))
                return keep
            }
            return nil
        }
    }

    /// Per connection, which cuts' `following` statements the client sent in its current
    /// transaction, and in the one it ended last (for the server's reply to that COMMIT).
    private struct TransactionState {
        var current: Set<Int> = []
        var ended: Set<Int> = []

        mutating func note(_ statement: String, cuts: [Cut]) {
            for (index, cut) in cuts.enumerated() {
                if case .message(_, _, let after?, _, _) = cut.trigger, statement.contains(after) { current.insert(index) }
            }
            let word = statement.prefix { !$0.isWhitespace && $0 != ";" }.uppercased()
            let toSavepoint = statement.uppercased().contains("TO SAVEPOINT")
            if ["COMMIT", "END"].contains(word) || (["ROLLBACK", "ABORT"].contains(word) && !toSavepoint) {
                ended = current
                current = []
            }
        }
    }

    static func failure(_ call: String) -> POSIXError {
        POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: "\(call) failed"])
    }
}
