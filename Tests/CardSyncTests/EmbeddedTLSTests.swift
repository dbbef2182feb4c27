import CardDatabase
import Foundation
@testable import LocalPostgres
import PostgresClient
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `cardsync db start --listen HOST:PORT --tls`: agencies reach the embedded cluster over TCP
/// with `sslmode=verify-full`, and nothing else gets in over TCP.
///
/// Each test gets its own cluster in a private home, on a free port, with TLS on; the suite is a
/// class so that `deinit` (run after every test, like XCTest's tearDown) removes the cluster
/// whatever the test did.
@Suite("The embedded cluster listens on TCP with TLS", .serialized)
final class EmbeddedTLSTests {
    let home: TemporaryDirectory
    let cluster: LocalCluster
    let listener: TCPListener
    static let password = "agency-pass-Q7"

    init() throws {
        home = try TemporaryDirectory(prefix: "cs-tls")
        let directory = home.url.appendingPathComponent("postgres")
        var started: (LocalCluster, TCPListener)?
        // The free port is only free when we look; retry if another process takes it first.
        for attempt in 1...3 {
            let candidate = try LocalCluster(directory: directory, options: .init(durability: .fastUnsafeForTests))
            let listener = try TCPListener(host: "127.0.0.1", port: try LocalCluster.freeLoopbackPort(), tls: true)
            do {
                try candidate.start(listening: .tcp(listener))
                started = (candidate, listener)
                break
            } catch where attempt < 3 {
                continue
            }
        }
        (cluster, listener) = try #require(started)
        // A login role with a password, made by the local superuser over the Unix socket.
        let admin = try Connection(conninfo: cluster.connectionURI())
        // DDL takes no parameters: the server quotes the password (a bind parameter) into it.
        let create = try admin.query("SELECT format('CREATE ROLE agency_clerk LOGIN PASSWORD %L', $1::text)", [.text(Self.password)])
        try admin.executeScript(try create[0].decode(String.self, at: 0))
    }

    deinit {
        try? cluster.removeAll()
        home.remove()
    }

    /// A key=value conninfo for the TCP listener; `extra` comes last and wins.
    func conninfo(_ extra: String, host: String = "127.0.0.1", port: Int? = nil) -> String {
        "host=\(host) port=\(port ?? listener.port) dbname=postgres user=agency_clerk password=\(Self.password) connect_timeout=10 \(extra)"
    }

    var verifyFull: String { "sslmode=verify-full sslrootcert=\(cluster.certificateAuthorityFile.path)" }

    /// Runs `connect` expecting a connection error and returns libpq's message.
    func connectionFailure(_ conninfo: String) throws -> String {
        let error = #expect(throws: PostgresError.self) { try Connection(conninfo: conninfo) }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains(Self.password) == false)
        return error?.message ?? ""
    }

    @Test("verify-full with the cluster's CA connects, over TLS, with a SCRAM password")
    func verifyFullConnects() throws {
        let connection = try Connection(conninfo: conninfo(verifyFull))
        let row = try connection.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0]
        #expect(try row.decode(Bool.self, at: 0) == true)
        #expect(["TLSv1.2", "TLSv1.3"].contains(try row.decode(String.self, at: 1)))
        #expect(try connection.query("SELECT current_user")[0].decode(String.self, at: 0) == "agency_clerk")
        #expect(try connection.query("SHOW password_encryption")[0].decode(String.self, at: 0) == "scram-sha-256")
        let admin = try Connection(conninfo: cluster.connectionURI())
        #expect(try admin.query("SHOW ssl_min_protocol_version")[0].decode(String.self, at: 0) == "TLSv1.2")
        let hash = try admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'agency_clerk'")[0].decode(String.self, at: 0)
        #expect(hash.hasPrefix("SCRAM-SHA-256$"))
        // The socket is still trusted for the local superuser, as before.
        #expect(try admin.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self, at: 0) == false)
    }

    @Test("verify-full with another CA fails on the certificate")
    func otherCertificateAuthorityIsRefused() throws {
        let other = home.url.appendingPathComponent("other-ca")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let otherCertificate = other.appendingPathComponent("ca.crt").path
        try Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", other.appendingPathComponent("ca.key").path, "-out", otherCertificate,
                          "-subj", "/CN=some other CA", "-days", "30"])
        let message = try connectionFailure(conninfo("sslmode=verify-full sslrootcert=\(otherCertificate)"))
        print("libpq, wrong CA: \(message)")
        #expect(message.contains("certificate"), "\(message)")
    }

    @Test("verify-full to a host name the certificate does not name fails")
    func wrongHostNameIsRefused() throws {
        let message = try connectionFailure(conninfo("hostaddr=127.0.0.1 \(verifyFull)", host: "wrong.example"))
        print("libpq, wrong host name: \(message)")
        #expect(message.contains("wrong.example"), "\(message)")
        #expect(message.contains("does not match host name"), "\(message)")
        // The names it does carry work through the same address.
        _ = try Connection(conninfo: conninfo("hostaddr=127.0.0.1 \(verifyFull)", host: "localhost"))
    }

    @Test("TCP without TLS is refused by pg_hba.conf")
    func clearTextTCPIsRefused() throws {
        let message = try connectionFailure(conninfo("sslmode=disable"))
        print("libpq, sslmode=disable: \(message)")
        #expect(message.contains("no pg_hba.conf entry"), "\(message)")
        #expect(message.contains("no encryption"), "\(message)")
        let hba = try String(contentsOf: cluster.dataDirectory.appendingPathComponent("pg_hba.conf"), encoding: .utf8)
        let tcpRules = hba.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("local") }
        #expect(!tcpRules.isEmpty && tcpRules.allSatisfy { $0.hasPrefix("hostssl ") && $0.hasSuffix("scram-sha-256") }, "\(hba)")
    }

    @Test("keys are mode 600 and belong to the server's account; the certificate names the listen host")
    func keyFilesArePrivate() throws {
        let serverUID: uid_t = geteuid() == 0 ? try #require(getpwnam("postgres")).pointee.pw_uid : geteuid()
        for name in ["ca.key", "server.key"] {
            var info = stat()
            #expect(stat(cluster.tlsDirectory.appendingPathComponent(name).path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "\(name): \(String(info.st_mode & 0o777, radix: 8))")
            #expect(info.st_uid == serverUID, "\(name)")
        }
        let text = try Self.openssl(["x509", "-in", cluster.tlsDirectory.appendingPathComponent("server.crt").path,
                                     "-noout", "-ext", "subjectAltName"])
        #expect(text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"), "\(text)")
    }

    @Test("the choice persists: an on-demand start of the embedded default listens with TLS again, reusing the certificates")
    func choicePersistsAcrossImplicitStarts() throws {
        let ca = try Data(contentsOf: cluster.certificateAuthorityFile)
        let serverCertificate = try Data(contentsOf: cluster.tlsDirectory.appendingPathComponent("server.crt"))
        try cluster.stop()
        // What every command does: DatabaseSelection's cluster (default options), started on demand.
        let selection = DatabaseSelection(flag: nil, environment: ["CARDSYNC_HOME": home.path])
        #expect(try selection.embeddedCluster().directory.path == cluster.directory.path)
        _ = try selection.connect(logger: .test, migrate: true)
        let status = try selection.embeddedCluster().status
        #expect(status.isRunning)
        #expect(status.tcp == listener)
        #expect(status.port == listener.port)
        let connection = try Connection(conninfo: conninfo(verifyFull).replacingOccurrences(of: "dbname=postgres", with: "dbname=cardsync"))
        #expect(try connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self, at: 0) == true)
        #expect(try Data(contentsOf: cluster.certificateAuthorityFile) == ca)
        #expect(try Data(contentsOf: cluster.tlsDirectory.appendingPathComponent("server.crt")) == serverCertificate)
    }

    @Test("a running cluster is not switched silently; a new listen host gets a new server certificate from the same CA")
    func changingTheListenHost() throws {
        let other = try TCPListener(host: "127.0.0.2", port: listener.port, tls: true)
        let error = #expect(throws: LocalClusterError.self) { try cluster.start(listening: .tcp(other)) }
        #expect(error?.message.contains("stop it first") == true, "\(error?.message ?? "")")
        try cluster.start(listening: .tcp(listener))  // The same choice: nothing to do.

        let ca = try Data(contentsOf: cluster.certificateAuthorityFile)
        let serverCertificate = try Data(contentsOf: cluster.tlsDirectory.appendingPathComponent("server.crt"))
        try cluster.stop()
        try cluster.start(listening: .tcp(other))
        #expect(try Data(contentsOf: cluster.certificateAuthorityFile) == ca)
        #expect(try Data(contentsOf: cluster.tlsDirectory.appendingPathComponent("server.crt")) != serverCertificate)
        let connection = try Connection(conninfo: conninfo(verifyFull, host: "127.0.0.2"))
        #expect(try connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self, at: 0) == true)
        // 127.0.0.1 is still in the certificate, but the server no longer listens there.
        _ = try connectionFailure(conninfo(verifyFull))

        // Back to the Unix socket only: no TCP at all.
        try cluster.stop()
        try cluster.start(listening: .unixSocketOnly)
        #expect(cluster.status.tcp == nil)
        _ = try connectionFailure(conninfo(verifyFull, host: "127.0.0.2"))
        #expect(try Connection(conninfo: cluster.connectionURI()).query("SELECT 1")[0].decode(Int.self, at: 0) == 1)
    }

    /// Runs /usr/bin/openssl directly and returns its output; throws on failure.
    @discardableResult
    static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LocalClusterError("openssl \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output
    }
}

/// `--listen HOST:PORT` as `cardsync db start` reads it (no server needed).
@Suite("EmbeddedTLS: listen addresses")
struct EmbeddedTLSListenAddressTests {
    @Test("HOST:PORT parsing")
    func parsing() throws {
        #expect(try TCPListener(parsing: "127.0.0.1:5433", tls: true) == TCPListener(host: "127.0.0.1", port: 5433, tls: true))
        #expect(try TCPListener(parsing: "[::1]:5433", tls: false).host == "::1")
        #expect(try TCPListener(parsing: "db.example.org:6000", tls: true).host == "db.example.org")
        #expect(try TCPListener(parsing: "0.0.0.0:5433", tls: true).isWildcard)
        #expect(try TCPListener(parsing: "localhost:5433", tls: true).isLoopback)
        for bad in ["127.0.0.1", "::1:5433", "host:0", "host:70000", ":5433", "a b:5433", "x'y:5433", "-c:5433", "127.0.0.1:54x"] {
            #expect(throws: LocalClusterError.self, "\(bad)") { try TCPListener(parsing: bad, tls: true) }
        }
    }

    @Test("pg_hba.conf admits only loopback clients to a loopback listener, any client (with a password) elsewhere")
    func clientAddresses() throws {
        let loopback = HostBasedAuthentication.contents(for: try TCPListener(host: "127.0.0.1", port: 5433, tls: true))
        #expect(loopback.contains("hostssl   all          all   127.0.0.1/32     scram-sha-256"), "\(loopback)")
        #expect(!loopback.contains("0.0.0.0") && !loopback.contains(" all   all "), "\(loopback)")
        let network = HostBasedAuthentication.contents(for: try TCPListener(host: "0.0.0.0", port: 5433, tls: false))
        #expect(network.contains("host      all          all   all              scram-sha-256"), "\(network)")
        // The socket stays trusted; nothing over TCP is.
        let trusted = network.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.hasSuffix("trust") }
        #expect(trusted.count == 2 && trusted.allSatisfy { $0.hasPrefix("local ") }, "\(network)")
    }
}
