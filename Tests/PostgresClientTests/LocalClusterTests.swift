import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport

@Suite("LocalCluster manages a private server in one directory")
struct LocalClusterTests {
    @Test("start, status and stop round-trip")
    func startStopStatus() throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-lc")
        let cluster = try LocalCluster(directory: directory.url, options: .init(durability: .fastUnsafeForTests))
        defer { try? cluster.removeAll() }
        #expect(cluster.isRunning == false)
        #expect(cluster.status.isInitialized == false)

        try cluster.start()
        let status = cluster.status
        #expect(status.isRunning)
        #expect(status.isInitialized)
        #expect(status.pid != nil)
        #expect(status.socketDirectory == cluster.socketDirectory)
        let connection = try Connection(conninfo: cluster.connectionURI())
        #expect(try connection.query("SHOW server_encoding")[0].decode(String.self, at: 0) == "UTF8")
        #expect(try connection.query("SHOW fsync")[0].decode(String.self, at: 0) == "off")

        try cluster.start()  // Already running: nothing to do.
        try cluster.stop()
        #expect(cluster.isRunning == false)
        #expect(throws: PostgresError.self) { try connection.query("SELECT 1") }
        try cluster.stop()  // Already stopped: nothing to do.

        try cluster.start()  // Restarts the existing data directory.
        #expect(cluster.isRunning)
    }

    @Test("two concurrent starts of the same cluster directory both succeed and share one server")
    func concurrentStarts() async throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-lc")
        defer { try? LocalCluster(directory: directory.url).removeAll() }
        let url = directory.url
        let results = await withTaskGroup(of: Result<Int32?, Error>.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    Result {
                        // Separate instances, as two processes would have.
                        let cluster = try LocalCluster(directory: url, options: .init(durability: .fastUnsafeForTests))
                        try cluster.start()
                        return cluster.status.pid
                    }
                }
            }
            var results: [Result<Int32?, Error>] = []
            for await result in group { results.append(result) }
            return results
        }
        let pids = try results.map { try $0.get() }
        #expect(pids.count == 2)
        #expect(pids[0] != nil && pids[0] == pids[1])
        let cluster = try LocalCluster(directory: url)
        let connection = try Connection(conninfo: cluster.connectionURI())
        #expect(try connection.query("SELECT count(*) FROM pg_database WHERE datname = 'postgres'")[0].decode(Int.self, at: 0) == 1)
    }

    @Test("a long cluster directory puts the socket in a short directory under /tmp")
    func longDirectory() throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-lc")
        let deep = directory.url.appendingPathComponent(String(repeating: "nested-directory-", count: 6))
        let cluster = try LocalCluster(directory: deep, options: .init(durability: .fastUnsafeForTests))
        defer { try? cluster.removeAll() }
        #expect(cluster.socketDirectory.path.hasPrefix("/tmp/cardsync-"))
        #expect(cluster.socketDirectory.path.utf8.count < 60)
        try cluster.start()
        let connection = try Connection(conninfo: cluster.connectionURI())
        #expect(try connection.query("SELECT 1")[0].decode(Int.self, at: 0) == 1)
        try cluster.removeAll()
        #expect(FileManager.default.fileExists(atPath: cluster.socketDirectory.path) == false)
        #expect(FileManager.default.fileExists(atPath: deep.path) == false)
    }

    @Test("the connection URI percent-encodes the socket directory")
    func uriEncoding() throws {
        let cluster = try LocalCluster(directory: URL(fileURLWithPath: "/tmp/a b"))
        #expect(cluster.connectionURI(database: "cardsync") == "postgresql:///cardsync?host=%2Ftmp%2Fa%20b&port=5432&user=postgres")
    }

    @Test("as root, a cluster directory the postgres user cannot reach is a clear error", .enabled(if: geteuid() == 0))
    func unreachableDirectoryAsRoot() throws {
        let directory = URL(fileURLWithPath: "/root/cardsync-lc-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try LocalCluster(directory: directory, options: .init(durability: .fastUnsafeForTests))
        let error = #expect(throws: LocalClusterError.self) { try cluster.start() }
        #expect(error?.message.contains("cannot reach") == true)
        #expect(error?.message.contains("/root") == true)
    }

    @Test("a server that cannot start reports the tail of its log")
    func startFailureShowsLog() throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-lc")
        let cluster = try LocalCluster(
            directory: directory.url,
            options: .init(durability: .fastUnsafeForTests, serverSettings: ["shared_buffers": "not-a-size"]))
        defer { try? cluster.removeAll() }
        let error = #expect(throws: LocalClusterError.self) { try cluster.start() }
        #expect(error?.message.contains("shared_buffers") == true)
        #expect(error?.message.contains("server.log") == true)
    }
}
