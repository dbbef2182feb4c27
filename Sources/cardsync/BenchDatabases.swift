import CardDatabase
import Foundation
import PostgresClient

/// Scratch databases for benchmarks, on the selected server (the embedded cluster by default),
/// dropped when the benchmark ends.
final class BenchDatabases {
    private let admin: Connection
    private let base: String
    private let prefix: String
    private var created: [String] = []

    init(selection: DatabaseSelection, prefix: String) throws {
        self.prefix = prefix + "_\(getpid())"
        switch selection.source {
        case .embedded:
            let cluster = try selection.embeddedCluster()
            try cluster.start()
            base = cluster.connectionURI(database: "postgres")
        case .flag, .environment:
            base = selection.conninfoForTools
        }
        admin = try Connection(conninfo: base)
    }

    /// Creates an empty database and returns a conninfo for it.
    func create(_ suffix: String) throws -> String {
        let name = "\(prefix)_\(suffix)"
        try admin.executeScript("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name))")
        try admin.executeScript("CREATE DATABASE \(try admin.escapeIdentifier(name))")
        created.append(name)
        return Self.conninfo(base, database: name)
    }

    /// Vacuums and analyses a database and forces a checkpoint (where allowed), so that the
    /// next timed step does not share the server with background maintenance of this one.
    func settle(_ conninfo: String) throws {
        let connection = try Connection(conninfo: conninfo)
        try connection.executeScript("VACUUM ANALYZE")
        _ = try? connection.execute("CHECKPOINT")
        // And the machine's other dirty files (a workload just generated, a database just
        // dropped): written back during a timed step, they would compete with its WAL writes.
        Foundation.sync()
    }

    /// Drops the database `create(suffix)` made, before the others.
    func drop(_ suffix: String) {
        let name = "\(prefix)_\(suffix)"
        guard created.contains(name) else { return }
        _ = try? admin.executeScript("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)")
        created.removeAll { $0 == name }
    }

    func dropAll() {
        for name in created {
            _ = try? admin.executeScript("DROP DATABASE IF EXISTS \(try admin.escapeIdentifier(name)) WITH (FORCE)")
        }
        created = []
    }

    /// The same server with another database: the URI path replaced, or `dbname=` appended to a
    /// key=value string (libpq lets the later key win).
    /// The same server and database, logging in as `user` (with `password`, if given): the URI's
    /// query parameters replaced, or keys appended to a key=value string (the later key wins).
    static func conninfo(_ base: String, user: String, password: String?) -> String {
        if base.hasPrefix("postgresql://") || base.hasPrefix("postgres://"), var parts = URLComponents(string: base) {
            parts.user = nil
            parts.password = nil
            var items = (parts.queryItems ?? []).filter { $0.name != "user" && $0.name != "password" }
            items.append(URLQueryItem(name: "user", value: user))
            if let password { items.append(URLQueryItem(name: "password", value: password)) }
            parts.queryItems = items
            return parts.string ?? base
        }
        return base + " user=" + ConnectionTarget.conninfoValue(user)
            + (password.map { " password=" + ConnectionTarget.conninfoValue($0) } ?? "")
    }

    static func conninfo(_ base: String, database: String) -> String {
        if base.hasPrefix("postgresql://") || base.hasPrefix("postgres://"), var parts = URLComponents(string: base) {
            parts.percentEncodedPath = "/" + (database.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? database)
            return parts.string ?? base
        }
        return base + " dbname=" + ConnectionTarget.conninfoValue(database)
    }
}
