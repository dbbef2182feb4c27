import CardDatabase
import Foundation
import Synchronization
import LocalPostgres
import PostgresClient

/// One throwaway PostgreSQL cluster per test process, and a fresh database per test.
///
/// ```swift
/// let connection = try TestDatabase.connect()          // a new, empty database
/// let uri = try TestDatabase.freshDatabase()            // or just its URI
/// ```
///
/// The cluster starts lazily on first use (thread-safe), lives in a short directory under /tmp
/// with fast, non-durable settings, and is stopped and deleted when the process exits. Clusters
/// left behind by test processes that crashed are removed the next time a test process starts.
public enum TestDatabase {
    /// The shared cluster, started on first call.
    public static func cluster() throws -> LocalCluster {
        try SharedCluster.instance.started()
    }

    /// Creates an empty database `t_<random>` and returns a libpq URI for it.
    ///
    /// With `template`, the new database is a copy of that one (for example a database that
    /// already holds the migrated schema); nobody may be connected to the template meanwhile.
    public static func freshDatabase(template: String? = nil) throws -> String {
        let cluster = try SharedCluster.instance.started()
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        // A short-lived admin connection per call: CREATE DATABASE statements from parallel
        // tests then run concurrently instead of queueing on one shared connection.
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"))
        var sql = "CREATE DATABASE \(try admin.escapeIdentifier(String(name)))"
        if let template { sql += " TEMPLATE \(try admin.escapeIdentifier(template))" }
        try admin.executeScript(sql)
        return cluster.connectionURI(database: String(name))
    }

    /// Creates a database `t_<random>` holding the shipped schema (as `cardsync db migrate`
    /// leaves it) and returns its URI: ordinary commands check the schema, they never migrate.
    /// With `throughVersion`, only the migrations up to it: a database an older release migrated.
    public static func migratedDatabase(throughVersion: Int? = nil) throws -> String {
        let uri = try freshDatabase()
        let migrations = Migration.all.filter { $0.version <= (throughVersion ?? Int.max) }
        _ = try Migrator(connection: try Connection(conninfo: uri), migrations: migrations, logger: .test).migrate()
        return uri
    }

    /// The last schema version this cardsync ships.
    public static var shippedSchemaVersion: Int { Migration.all.map(\.version).max() ?? 0 }

    /// Connects to a new, empty database.
    public static func connect() throws -> Connection {
        try Connection(conninfo: try freshDatabase())
    }
}

/// Holds the per-process cluster.
final class SharedCluster: Sendable {
    static let instance = SharedCluster()

    private struct State {
        var cluster: Result<LocalCluster, Error>?
        var directory: URL?
    }

    /// Held while the first caller starts the cluster, so later callers wait for it.
    private let state = Mutex(State())

    static let directoryPrefix = "cardsync-test-"

    /// The running cluster; the first caller starts it, later callers wait for that.
    func started() throws -> LocalCluster {
        try state.withLock { state in
            if state.cluster == nil {
                Self.removeAbandonedClusters()
                let directory = URL(fileURLWithPath: "/tmp/\(Self.directoryPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
                state.directory = directory
                state.cluster = Result { try Self.start(in: directory) }
            }
            return try state.cluster!.get()
        }
    }

    private static func start(in directory: URL) throws -> LocalCluster {
        let cluster = try LocalCluster(directory: directory, options: .init(durability: .fastUnsafeForTests))
        // Register cleanup before starting, so a half-started cluster is removed too.
        atexit { SharedCluster.instance.shutdown() }
        try cluster.start()
        return cluster
    }

    /// Runs at process exit.
    func shutdown() {
        state.withLock { state in
            if case .success(let cluster)? = state.cluster {
                try? cluster.removeAll()
            } else if let directory = state.directory, let cluster = try? LocalCluster(directory: directory) {
                try? cluster.removeAll()
            }
            state.cluster = nil
        }
    }

    /// Deletes test clusters whose owning process is gone (it crashed or was killed, so its
    /// atexit handler never ran). The owner's pid is part of the directory name
    /// (`cardsync-test-<pid>-<random>`); clusters of live processes are left alone.
    static func removeAbandonedClusters() {
        let tmp = URL(fileURLWithPath: "/tmp")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: tmp.path) else { return }
        for name in names where name.hasPrefix(directoryPrefix) {
            let fields = name.dropFirst(directoryPrefix.count).split(separator: "-")
            guard fields.count == 2, let pid = Int32(fields[0]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? LocalCluster(directory: tmp.appendingPathComponent(name)).removeAll()
            }
        }
    }
}
