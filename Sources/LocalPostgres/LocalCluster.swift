import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL cluster living in one directory, managed with `initdb` and `pg_ctl`.
///
/// Layout: `DIR/data` (the data directory), `DIR/server.log`, `DIR/cluster.lock`, and the Unix
/// socket in `DIR` itself, unless that path would be too long (see `socketDirectory`).
///
/// The server listens on a Unix socket only, unless `Options.listenOnLoopback` asks for TCP on
/// 127.0.0.1: no port races, nothing reachable from the network. Socket connections use `trust`
/// (only users who can reach the socket directory, which is private, get in); TCP connections
/// need a password (`scram-sha-256`).
///
/// `start(listening: .tcp(…))` chooses TCP on any address, optionally TLS only, and saves the
/// choice in `DIR/listen.json` (`ListenSettingsFile`), which every later start follows, whatever
/// its options. With TLS, `DIR/tls/` holds the cluster's own CA and server certificate
/// (`LocalCertificateAuthority`). pg_hba.conf is rewritten from the choice at every start
/// (`HostBasedAuthentication`).
///
/// Creating databases is left to callers, who connect through `PostgresClient`
/// (`CREATE DATABASE`): this module deliberately does not depend on libpq.
///
/// Every mutating step takes an exclusive `flock` on `DIR/cluster.lock`, so two processes
/// starting the same cluster at once both succeed and share one server.
public struct LocalCluster: Sendable {
    /// Whether the cluster may trade crash safety for speed.
    public enum Durability: Sendable {
        /// Normal PostgreSQL durability: for data that matters (the embedded default).
        case durable
        /// fsync, synchronous commit and full-page writes off, `initdb --no-sync`: a crash can
        /// corrupt the cluster. Only for throwaway test clusters.
        case fastUnsafeForTests
    }

    public struct Options: Sendable {
        public var durability: Durability
        /// The server port. With a Unix socket only, it just names the socket file
        /// (`.s.PGSQL.<port>`), so the default never conflicts with other servers.
        public var port: Int
        /// Also accept TCP connections on 127.0.0.1:`port` (password authentication), unless the
        /// cluster has a saved listen choice (`start(listening:)`), which wins.
        public var listenOnLoopback: Bool
        /// Extra server settings, passed as `-c name=value`.
        public var serverSettings: [String: String]
        /// Use these binaries instead of looking them up.
        public var binaries: PostgresBinaries?

        public init(
            durability: Durability = .durable, port: Int = 5432, listenOnLoopback: Bool = false,
            serverSettings: [String: String] = [:], binaries: PostgresBinaries? = nil
        ) {
            self.durability = durability
            self.port = port
            self.listenOnLoopback = listenOnLoopback
            self.serverSettings = serverSettings
            self.binaries = binaries
        }
    }

    /// What `status` reports.
    public struct Status: Sendable, Hashable {
        public var isRunning: Bool
        /// The postmaster's process id, when running.
        public var pid: Int32?
        public var port: Int
        public var socketDirectory: URL
        public var dataDirectory: URL
        public var isInitialized: Bool
        /// Where the server takes TCP connections besides its socket (nil: socket only): what
        /// it was started with when running, else what the next start will use.
        public var tcp: TCPListener?
    }

    /// What `start` does about TCP.
    public enum Listening: Sendable, Hashable {
        /// As chosen last for this cluster (`DIR/listen.json`), else as `Options` say: what
        /// every start that is not `cardsync db start --listen` uses.
        case saved
        /// The Unix socket only, from now on (saved).
        case unixSocketOnly
        /// TCP as given, from now on (saved); with `tls`, TLS only, with a certificate from the
        /// cluster's own CA.
        case tcp(TCPListener)
    }

    public let directory: URL
    public let options: Options
    public let binaries: PostgresBinaries
    /// The server's Unix socket directory: the cluster directory itself, or, when
    /// `DIR/.s.PGSQL.<port>` would exceed the ~100-byte limit on socket paths, a short private
    /// directory `/tmp/cardsync-<hash of DIR>` that the same cluster always maps to.
    public let socketDirectory: URL
    private let logger: Logger?

    public var dataDirectory: URL { directory.appendingPathComponent("data") }
    public var logFile: URL { directory.appendingPathComponent("server.log") }
    /// The cluster's TLS files: its CA and the server certificate (made on the first TLS start).
    public var tlsDirectory: URL { directory.appendingPathComponent("tls") }
    /// The CA certificate clients need for `sslmode=verify-full` (`sslrootcert=`).
    public var certificateAuthorityFile: URL { tlsDirectory.appendingPathComponent("ca.crt") }
    var lockFile: URL { directory.appendingPathComponent("cluster.lock") }

    /// Describes a cluster in `directory` (nothing is created until `ensureInitialized` or
    /// `start`). Throws when no PostgreSQL binaries are installed.
    public init(directory: URL, options: Options = Options(), logger: Logger? = nil) throws {
        let directory = URL(fileURLWithPath: directory.standardizedFileURL.path)
        self.directory = directory
        self.options = options
        self.binaries = try options.binaries ?? PostgresBinaries.locate()
        self.logger = logger
        // The longest port, not `options.port`: a saved listen choice may change the port (and
        // so the socket's name) later, and the socket directory must not move with it.
        let socketFile = directory.appendingPathComponent(".s.PGSQL.65535").path
        if socketFile.utf8.count <= 100 {
            socketDirectory = directory
        } else {
            socketDirectory = URL(fileURLWithPath: "/tmp/cardsync-\(Self.shortHash(directory.path))")
        }
    }

    // MARK: - Lifecycle

    /// Creates the data directory with `initdb` if it does not exist yet.
    public func ensureInitialized() throws {
        try withLock { account in try initializeLocked(account) }
    }

    /// Initializes if needed and starts the server; returns at once if it already runs.
    /// On failure the error includes `pg_ctl`'s output and the tail of the server log.
    ///
    /// `listening` other than `.saved` is saved for later starts once the server has started
    /// with it (a port that cannot be bound must not break every later on-demand start). A
    /// server that already runs another way is an error: listen address, port and TLS only
    /// change with a restart, which would cut off whoever is connected, so that is left to the
    /// caller (`stop`, then `start`).
    public func start(listening: Listening = .saved) throws {
        try withLock { account in
            try initializeLocked(account)
            let settingsFile = ListenSettingsFile(clusterDirectory: directory)
            let requested: ListenSettingsFile.Contents?
            switch listening {
            case .saved: requested = nil
            case .unixSocketOnly: requested = .init(tcp: nil)
            case .tcp(let listener): requested = .init(tcp: listener)
            }
            let saved = try settingsFile.load()
            let isRunning = currentStatus().isRunning
            if isRunning, let requested, requested.tcp != (try effectiveListener(saved: saved)) {
                throw LocalClusterError(
                    "the cluster in \(directory.path) already runs \(Self.describe(try effectiveListener(saved: saved))); it can listen \(Self.describe(requested.tcp)) only after a restart: stop it first (cardsync db stop)")
            }
            let listener = try effectiveListener(saved: requested ?? saved)
            let saveChoice = {
                if let requested, requested != saved { try settingsFile.save(requested, account: account) }
            }
            if isRunning { return try saveChoice() }
            try prepareSocketDirectory(account)
            let port = listener?.port ?? options.port
            var serverArguments = ["-k", socketDirectory.path, "-c", "port=\(port)",
                                   "-c", "listen_addresses=\(listener?.host ?? "")",
                                   "-c", "password_encryption=scram-sha-256"]
            if let listener, listener.tls {
                let authority = try LocalCertificateAuthority(directory: tlsDirectory, account: account, logger: logger)
                try authority.ensureServerCertificate(names: listener.certificateNames)
                serverArguments += ["-c", "ssl=on",
                                    "-c", "ssl_cert_file=\(authority.serverCertificate.path)",
                                    "-c", "ssl_key_file=\(authority.serverKey.path)",
                                    "-c", "ssl_min_protocol_version=TLSv1.2"]
            }
            try HostBasedAuthentication.write(for: listener, dataDirectory: dataDirectory, account: account)
            if options.durability == .fastUnsafeForTests {
                serverArguments += ["-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
            }
            for (name, value) in options.serverSettings.sorted(by: { $0.key < $1.key }) {
                serverArguments += ["-c", "\(name)=\(value)"]
            }
            logger?.info("starting PostgreSQL", metadata: ["data": "\(dataDirectory.path)", "socket": "\(socketDirectory.path)",
                                                           "tcp": "\(Self.describe(listener))"])
            do {
                try Subprocess.run(
                    binaries.pgCtl,
                    ["-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "120",
                     "-o", serverArguments.map(Subprocess.shellQuoted).joined(separator: " "), "start"],
                    asUser: account.switchToUser, currentDirectory: directory)
            } catch let error as LocalClusterError {
                throw LocalClusterError("could not start PostgreSQL in \(directory.path): \(error.message)\(logTail())", cause: error)
            }
            try saveChoice()
        }
    }

    /// Stops the server (fast shutdown: sessions are disconnected, data is flushed). Returns at
    /// once if it is not running.
    public func stop() throws {
        try withLock { account in try stopLocked(account, mode: "fast") }
    }

    /// Stops the server the way a crash or power loss would (`pg_ctl -m immediate`: no
    /// checkpoint, recovery from the WAL at the next start). For fault tests: only what was
    /// durably committed survives.
    public func crash() throws {
        try withLock { account in try stopLocked(account, mode: "immediate") }
    }

    /// Stops the server and deletes the cluster directory and its socket directory. For test
    /// clusters: the data is gone afterwards.
    public func removeAll() throws {
        guard FileManager.default.fileExists(atPath: directory.path) else { return }
        try withLock { account in
            // Immediate shutdown: no checkpoint for data about to be deleted.
            try stopLocked(account, mode: "immediate")
            try FileManager.default.removeItem(at: directory)
            if socketDirectory != directory { try? FileManager.default.removeItem(at: socketDirectory) }
        }
    }

    /// Whether the server runs, read from `data/postmaster.pid` without taking the lock.
    public var status: Status { currentStatus() }

    public var isRunning: Bool { currentStatus().isRunning }

    /// A libpq URI reaching `database` over the Unix socket as the `postgres` superuser:
    /// `postgresql:///DB?host=%2Fpath%2Fto%2Fsocketdir&port=5432&user=postgres`.
    public func connectionURI(database: String = "postgres") -> String {
        let status = currentStatus()
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let host = status.socketDirectory.path.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        let db = database.addingPercentEncoding(withAllowedCharacters: allowed) ?? database
        return "postgresql:///\(db)?host=\(host)&port=\(status.port)&user=postgres"
    }

    /// A libpq URI reaching `database` over TCP on 127.0.0.1 (requires `listenOnLoopback`).
    public func loopbackURI(database: String = "postgres", user: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let db = database.addingPercentEncoding(withAllowedCharacters: allowed) ?? database
        let name = user.addingPercentEncoding(withAllowedCharacters: allowed) ?? user
        return "postgresql://\(name)@127.0.0.1:\(currentStatus().port)/\(db)"
    }

    /// A TCP port on 127.0.0.1 that is free right now (the kernel picks it). Another process
    /// could take it before the server binds it, so callers should retry on failure.
    public static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw LocalClusterError("socket() failed: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw LocalClusterError("could not find a free TCP port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    // MARK: - Internals

    /// The saved choice if there is one, else what `Options.listenOnLoopback` says.
    private func effectiveListener(saved: ListenSettingsFile.Contents?) throws -> TCPListener? {
        if let saved { return saved.tcp }
        return options.listenOnLoopback ? try TCPListener(host: "127.0.0.1", port: options.port, tls: false) : nil
    }

    private static func describe(_ listener: TCPListener?) -> String {
        guard let listener else { return "on its Unix socket only" }
        return "on TCP \(listener)\(listener.tls ? " with TLS only" : " without TLS")"
    }

    private func withLock<T>(_ body: (ServerAccount) throws -> T) throws -> T {
        let account = try ServerAccount.forCurrentProcess()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw LocalClusterError("could not create the cluster directory \(directory.path): \(error.localizedDescription)", cause: error)
        }
        let lock = try ClusterLock(path: lockFile.path)
        defer { withExtendedLifetime(lock) {} }
        return try body(account)
    }

    private func initializeLocked(_ account: ServerAccount) throws {
        let versionFile = dataDirectory.appendingPathComponent("PG_VERSION").path
        if FileManager.default.fileExists(atPath: versionFile) { return }
        try account.takeOwnership(of: directory.path, mode: 0o700)
        try account.checkCanReach(directory)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory.path)) ?? []
        if !leftovers.isEmpty {
            throw LocalClusterError(
                "\(dataDirectory.path) exists but is not a PostgreSQL data directory (no PG_VERSION); move it away or delete it")
        }
        var arguments = ["-D", dataDirectory.path, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                         "--auth-local=trust", "--auth-host=scram-sha-256"]
        if options.durability == .fastUnsafeForTests { arguments.append("--no-sync") }
        logger?.info("initializing PostgreSQL cluster", metadata: ["data": "\(dataDirectory.path)"])
        do {
            try Subprocess.run(binaries.initdb, arguments, asUser: account.switchToUser, currentDirectory: directory)
        } catch let error as LocalClusterError {
            throw LocalClusterError("could not initialize a PostgreSQL cluster in \(dataDirectory.path): \(error.message)", cause: error)
        }
    }

    private func stopLocked(_ account: ServerAccount, mode: String) throws {
        guard currentStatus().isRunning else { return }
        logger?.info("stopping PostgreSQL", metadata: ["data": "\(dataDirectory.path)"])
        do {
            try Subprocess.run(binaries.pgCtl, ["-D", dataDirectory.path, "-m", mode, "-w", "-t", "120", "stop"],
                               asUser: account.switchToUser, currentDirectory: directory)
        } catch let error as LocalClusterError {
            throw LocalClusterError("could not stop PostgreSQL in \(directory.path): \(error.message)\(logTail())", cause: error)
        }
    }

    /// A separate short socket directory must exist, be private and be ours: /tmp is shared,
    /// and someone else could have created the path first.
    private func prepareSocketDirectory(_ account: ServerAccount) throws {
        guard socketDirectory != directory else { return }
        let path = socketDirectory.path
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw LocalClusterError("could not create the socket directory \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR,
              info.st_uid == account.uid || info.st_uid == geteuid()
        else {
            throw LocalClusterError("the socket directory \(path) exists but is not a directory owned by us; remove it")
        }
        try account.takeOwnership(of: path, mode: 0o700)
    }

    private func currentStatus() -> Status {
        let initialized = FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path)
        let saved = try? ListenSettingsFile(clusterDirectory: directory).load()
        let listener = (try? effectiveListener(saved: saved)) ?? nil
        var status = Status(isRunning: false, pid: nil, port: listener?.port ?? options.port, socketDirectory: socketDirectory,
                            dataDirectory: dataDirectory, isInitialized: initialized, tcp: listener)
        // postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address, …
        guard let text = try? String(contentsOf: dataDirectory.appendingPathComponent("postmaster.pid"), encoding: .utf8)
        else { return status }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let pid = lines.first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }), pid > 0 else { return status }
        // kill(pid, 0) probes without signalling; EPERM means it exists but belongs to postgres.
        guard kill(pid, 0) == 0 || errno == EPERM else { return status }
        status.isRunning = true
        status.pid = pid
        if lines.count > 3, let port = Int(lines[3].trimmingCharacters(in: .whitespaces)) { status.port = port }
        if lines.count > 4, !lines[4].isEmpty { status.socketDirectory = URL(fileURLWithPath: lines[4]) }
        return status
    }

    private func logTail(lines count: Int = 30) -> String {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8), !text.isEmpty else { return "" }
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
        return "\n--- last lines of \(logFile.path) ---\n\(tail)"
    }

    /// FNV-1a: stable across processes and runs (unlike `Hasher`), so every process maps a
    /// cluster directory to the same socket directory.
    static func shortHash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }
}
