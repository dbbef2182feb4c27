import CardCore
import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport

/// Reports from a hot standby (docs/deploy.md, "Reports from a standby"): the bureau can point
/// `cardsync report` at a streaming replica so that month-end reports do not load the primary.
/// A standby takes no writes, so the schema check and the stale-projection check must only read.
@Suite("Reports from a standby")
struct StandbyReportTests {
    @Test("a streaming standby gives the same monthly report as its primary, and refuses a stale projection without writing")
    func standbyReportEqualsPrimary() throws {
        let home = try TemporaryDirectory(prefix: "cs-standby")
        // Both clusters private (the shared test cluster must not become anyone's primary).
        // wal_level=replica is PostgreSQL 15's default; said here because streaming needs it.
        let primary = try LocalCluster(directory: home.url.appendingPathComponent("primary"),
                                       options: .init(durability: .durable, port: 5432, serverSettings: ["wal_level": "replica"]))
        let standby = try LocalCluster(directory: home.url.appendingPathComponent("standby"),
                                       options: .init(durability: .durable, port: 5433))
        defer {
            try? standby.removeAll()
            try? primary.removeAll()
        }
        try primary.start()
        try PrivateCluster.recreate("cardsync", on: primary)
        let primaryURI = primary.connectionURI(database: "cardsync")
        let cli = Drill(scratch: home.url, database: primaryURI)
        try cli.ok(["db", "migrate"])
        let generated = home.url.appendingPathComponent("gen")
        try cli.ok(["generate", generated.path, "--agencies", "3", "--applications", "200", "--seed", "5",
                    "--end", "2026-11-01"], database: false)
        let dirs = try Drill.queues(under: generated).map(\.path)
        try cli.ok(["sync"] + dirs)
        try cli.ok(["bureau", "import", generated.appendingPathComponent("bureau-decisions.jsonl").path])
        try cli.ok(["sync"] + dirs)

        // The standby: a base backup of the running primary, -R writes standby.signal and
        // primary_conninfo (the primary's socket), -X stream carries the WAL written meanwhile.
        // LocalCluster then starts it like any cluster: PG_VERSION exists, so no initdb.
        let standbyData = standby.dataDirectory
        try FileManager.default.createDirectory(at: standby.directory, withIntermediateDirectories: true)
        try PrivateCluster.run(primary, "pg_basebackup", ["-D", standbyData.path, "-R", "-X", "stream", "-c", "fast",
                                                          "-d", primary.connectionURI()])
        try StandbySetup.handToServerAccount(standby.directory, data: standbyData)
        try standby.start()
        let standbyURI = standby.connectionURI(database: "cardsync")
        let replica = try Connection(conninfo: standbyURI)
        #expect(try replica.query("SELECT pg_is_in_recovery()")[0].decode(Bool.self, at: 0), "the second cluster must be a standby")

        // Same figures from both once the standby has replayed what the primary wrote.
        try StandbySetup.waitForReplay(primary: primaryURI, standby: standbyURI)
        let onPrimary = try StandbySetup.monthlyReport(cli, primaryURI)
        let onStandby = try StandbySetup.monthlyReport(cli, standbyURI)
        #expect(onStandby == onPrimary)
        #expect((onPrimary["agencies"]?.arrayValue ?? []).count == dirs.count, "the report should cover every agency")
        let conflicts = try CardsyncCLI.run(["conflicts", "list", "--format", "json", "--database", standbyURI], scratch: home.url)
        #expect(conflicts.status == 0, "\(conflicts.stderr)")

        // A projection left behind the ledger on the primary (a sync that died between its two
        // commits), replayed to the standby: the standby cannot rebuild it and says who can.
        let db = try Connection(conninfo: primaryURI)
        try db.executeScript("UPDATE cardsync.projection_state SET through_ledger_id = through_ledger_id - 5")
        try StandbySetup.waitForReplay(primary: primaryURI, standby: standbyURI)
        let stale = try CardsyncCLI.run(["report", "monthly", "--month", "2026-10", "--format", "json", "--database", standbyURI],
                                        scratch: home.url)
        #expect(stale.status == 1)
        #expect(stale.stderr.contains("standby") && stale.stderr.contains("primary"), "\(stale.stderr)")
        #expect(!stale.stderr.contains("read-only transaction"), "it tried to write: \(stale.stderr)")
        // A reader on the primary rebuilds it; once replayed the standby reports again, as the
        // primary does.
        let repaired = try StandbySetup.monthlyReport(cli, primaryURI)
        #expect(repaired == onPrimary)
        try StandbySetup.waitForReplay(primary: primaryURI, standby: standbyURI)
        #expect(try StandbySetup.monthlyReport(cli, standbyURI) == repaired)
    }
}

enum StandbySetup {
    /// pg_basebackup ran as this process's user; the server runs as the server account
    /// (`postgres` when tests run as root), which must own the cluster directory (it writes its
    /// socket and log there) and the data directory, mode 700.
    static func handToServerAccount(_ directory: URL, data: URL) throws {
        if geteuid() == 0 {
            try PrivateCluster.runProgram(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres:postgres", directory.path])
        }
        chmod(data.path, 0o700)
    }

    /// Waits until the standby has replayed the primary's WAL up to now. Bounded, so a standby
    /// that never catches up fails the test instead of hanging it.
    static func waitForReplay(primary: String, standby: String) throws {
        let target = try Connection(conninfo: primary).query("SELECT pg_current_wal_lsn()::text")[0].decode(String.self, at: 0)
        let replica = try Connection(conninfo: standby)
        for _ in 0..<1200 {
            let caughtUp = try replica.query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", [.text(target)])[0].decode(Bool.self, at: 0)
            if caughtUp { return }
            usleep(50_000)
        }
        throw Drill.CLIFailed(arguments: ["wait for replay"], stderr: "the standby did not replay up to \(target)")
    }

    /// `report monthly --format json` for October 2026, without `generated_at` (the one field
    /// that differs between two runs).
    static func monthlyReport(_ cli: Drill, _ uri: String) throws -> JSONValue {
        let out = try CardsyncCLI.run(["report", "monthly", "--month", "2026-10", "--format", "json", "--database", uri],
                                      scratch: cli.scratch)
        #expect(out.status == 0, "\(out.stderr)")
        return withoutGeneratedAt(try JSONParser.parse(out.stdout))
    }

    static func withoutGeneratedAt(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let fields):
            return .object(fields.filter { $0.key != "generated_at" }.mapValues(withoutGeneratedAt))
        case .array(let items):
            return .array(items.map(withoutGeneratedAt))
        default:
            return value
        }
    }
}
