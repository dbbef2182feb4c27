import CardCore
import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport

/// The bureau's restore drill (docs/deploy.md, "Restore drill"), end to end with the commands an
/// operator types: agencies sync, the central database is dumped, work goes on (new events,
/// bureau decisions, conflicts), the old dump is restored over it, every agency runs
/// `reconcile --repair` and syncs, the bureau imports its decisions file again. Nothing may be
/// lost or doubled, and the restored centre must be recognised as the same centre.
@Suite("Restore drill")
struct RestoreDrillTests {
    @Test("a centre restored from an older dump loses nothing after reconcile --repair, a sync and a re-import of the bureau's decisions")
    func restoredCentreLosesNothing() throws {
        // A private cluster: the drill drops and recreates its database, which the shared test
        // cluster's other tests must never see.
        let home = try TemporaryDirectory(prefix: "cs-drill")
        let cluster = try LocalCluster(directory: home.url.appendingPathComponent("pg"), options: .init(durability: .fastUnsafeForTests))
        defer { try? cluster.removeAll() }
        try cluster.start()
        let uri = cluster.connectionURI(database: "cardsync")
        try PrivateCluster.recreate("cardsync", on: cluster)
        let cli = Drill(scratch: home.url, database: uri)
        try cli.ok(["db", "migrate"])

        // The workload: four agencies' generated queues, faulty lines and duplicate applications
        // included. Each outbox is cut at its middle line; the rest is what the counters write
        // after the dump. The bureau's decisions are split the same way.
        let generated = home.url.appendingPathComponent("gen")
        let summary = try JSONParser.parse(try cli.ok(["generate", generated.path, "--agencies", "4", "--applications", "300",
                                                       "--faults", "0.02", "--seed", "11", "--end", "2026-11-01", "--json"], database: false))
        let validEvents = Int(summary["outbox_events"]?.intValue ?? -1)
        let faulty = Int(summary["injected_faults"]?.intValue ?? -1)
        let queues = try FileManager.default.contentsOfDirectory(atPath: generated.path).sorted()
            .map { generated.appendingPathComponent($0) }.filter { $0.lastPathComponent.hasPrefix("CS-") }
        #expect(queues.count == 4)
        var laterOutbox: [URL: Data] = [:]
        for queue in queues {
            let outbox = queue.appendingPathComponent("outbox.jsonl")
            let (first, rest) = Drill.split(try Data(contentsOf: outbox))
            try first.write(to: outbox)
            laterOutbox[queue] = rest
        }
        let (earlyDecisions, lateDecisions) = Drill.split(try Data(contentsOf: generated.appendingPathComponent("bureau-decisions.jsonl")))
        let early = home.url.appendingPathComponent("decisions-before-dump.jsonl")
        let late = home.url.appendingPathComponent("decisions-after-dump.jsonl")
        try earlyDecisions.write(to: early)
        try lateDecisions.write(to: late)
        let decisionLines = Drill.lines(earlyDecisions) + Drill.lines(lateDecisions)

        // Before the dump: push, decisions, pull.
        let dirs = queues.map(\.path)
        try cli.ok(["sync"] + dirs)
        try cli.ok(["bureau", "import", early.path])
        try cli.ok(["sync"] + dirs)

        let dump = home.url.appendingPathComponent("cardsync.dump")
        try PrivateCluster.run(cluster, "pg_dump", ["-Fc", "-f", dump.path, "-d", uri])

        // After the dump: the rest of the outboxes (more duplicates among them: conflicts), the
        // rest of the decisions, pulled into the inboxes. All of this the restore takes away.
        for queue in queues {
            let outbox = try FileHandle(forWritingTo: queue.appendingPathComponent("outbox.jsonl"))
            try outbox.seekToEnd()
            try outbox.write(contentsOf: laterOutbox[queue]!)
            try outbox.close()
        }
        try cli.ok(["sync"] + dirs)
        try cli.ok(["bureau", "import", late.path])
        try cli.ok(["sync"] + dirs)
        let before = try Drill.counts(uri)
        #expect(before.agencyEvents == validEvents)
        #expect(before.conflicts > 0, "the workload should open conflicts")

        // The restore: a fresh database of the same name from the old dump.
        try PrivateCluster.recreate("cardsync", on: cluster)
        try PrivateCluster.run(cluster, "pg_restore", ["--exit-on-error", "-d", uri, dump.path])
        let restored = try Drill.counts(uri)
        #expect(restored.agencyEvents < before.agencyEvents, "the dump was taken before the later syncs")

        // Every agency repairs: the centre is recognised (exit 0, not "another central
        // database"), and each inbox holds decisions the centre no longer knows.
        let repair = try JSONParser.parse(try cli.ok(["reconcile"] + dirs + ["--repair", "--json"]))
        let rows = repair["agencies"]?.arrayValue ?? []
        #expect(rows.count == queues.count)
        let unknownCentrally = rows.compactMap { $0["found"]?["decisions_unknown_centrally"]?.intValue }.reduce(0, +)
        let repushed = rows.compactMap { $0["repaired"]?["pushed"]?.intValue }.reduce(0, +)
        #expect(unknownCentrally > 0, "decisions pulled after the dump are lost centrally")
        #expect(Int(repushed) == before.agencyEvents - restored.agencyEvents)
        try cli.ok(["sync"] + dirs)

        // The bureau records again what it decided after the dump: the same file, so the same
        // event_ids. A second import of both files changes nothing.
        try cli.ok(["bureau", "import", late.path])
        try cli.ok(["sync"] + dirs)
        let afterReimport = try Drill.counts(uri)
        for file in [early, late] {
            let again = try JSONParser.parse(try cli.ok(["bureau", "import", file.path, "--json"]))
            #expect(again["recorded"]?.intValue == 0, "\(file.lastPathComponent) recorded again")
        }
        let final = try Drill.counts(uri)
        #expect(final == afterReimport)

        // Nothing lost, nothing twice.
        #expect(final.agencyEvents == validEvents)
        #expect(final.distinctAgencyEvents == final.agencyEvents)
        #expect(final.bureauEvents == decisionLines, "every decision of both files in the ledger")
        #expect(final.distinctBureauEvents == final.bureauEvents)
        try cli.ok(["db", "verify"])
        let central = try Connection(conninfo: uri)
        let lateIDs = Set(try Drill.field("event_id", of: late))
        var quarantined = 0, doubled = 0, stale = 0
        for queue in queues {
            let code = queue.lastPathComponent
            let inbox = try Drill.field("event_id", of: queue.appendingPathComponent("inbox.jsonl"))
            let types = try Drill.field("type", of: queue.appendingPathComponent("inbox.jsonl"))
            let delivered = Set(try central.query("""
                SELECT l.event_id::text FROM cardsync.deliveries d JOIN cardsync.ledger l USING (ledger_id)
                WHERE d.agency_code = $1
                """, [.text(code)]).map { try $0.decode(String.self, at: 0) })
            // Nothing the centre delivers is missing from the inbox.
            #expect(delivered.isSubset(of: Set(inbox)), "\(code): \(delivered.subtracting(inbox).count) deliveries missing")
            // What else the inbox holds is one of the two known issues below, nothing more.
            let twice = Dictionary(grouping: inbox, by: { $0 }).filter { $0.value.count > 1 }.keys
            #expect(Set(twice).isSubset(of: lateIDs), "\(code): doubled lines other than re-imported decisions")
            doubled += twice.count
            let extra = zip(inbox, types).filter { !delivered.contains($0.0) }
            #expect(extra.allSatisfy { $0.1 == "conflict_opened" }, "\(code): \(extra.filter { $0.1 != "conflict_opened" })")
            stale += extra.count
            let lines = try Drill.field("line", of: queue.appendingPathComponent("quarantine.jsonl"))
            #expect(Set(lines).count == lines.count, "\(code): a line quarantined twice")
            quarantined += lines.count
        }
        #expect(quarantined == faulty)
        let check = try JSONParser.parse(try cli.ok(["reconcile"] + dirs + ["--json"]))
        for row in check["agencies"]?.arrayValue ?? [] {
            #expect(row["found"]?["events_missing_centrally"]?.intValue == 0)
            #expect(row["found"]?["decisions_missing_at_agency"]?.intValue == 0)
        }
        // Known issues (remove the wrappers when fixed; they fail once the issue is gone):
        withKnownIssue("a pull skips decisions the inbox holds only while its cursor and the centre's disagree; after the first sync following a restore they agree, so decisions the bureau imports again are appended a second time") {
            #expect(doubled == 0, "\(doubled) decisions twice in the inboxes")
        }
        withKnownIssue("conflict_opened notifications are system events with fresh event_ids: re-pushed events open the conflicts again under new ids, the inbox keeps the old ones, and reconcile reports them as unknown centrally forever") {
            #expect(stale == 0, "\(stale) conflict notifications the centre no longer knows")
            #expect(check["consistent"]?.boolValue == true)
        }
    }
}

/// The drill's commands and checks.
struct Drill {
    let scratch: URL
    let database: String

    /// Runs `cardsync ARGS --database …`, expecting exit 0; returns stdout.
    @discardableResult
    func ok(_ arguments: [String], database withDatabase: Bool = true) throws -> String {
        let out = try CardsyncCLI.run(arguments + (withDatabase ? ["--database", database] : []), scratch: scratch)
        #expect(out.status == 0, "cardsync \(arguments.prefix(2).joined(separator: " ")): \(out.stderr)")
        guard out.status == 0 else { throw CLIFailed(arguments: arguments, stderr: out.stderr) }
        return out.stdout
    }

    struct CLIFailed: Error, CustomStringConvertible {
        var arguments: [String]
        var stderr: String
        var description: String { "cardsync \(arguments.joined(separator: " ")) failed: \(stderr)" }
    }

    /// Cuts JSON lines at the middle line: the first half and the rest, each whole lines.
    static func split(_ data: Data) -> (Data, Data) {
        let ends = data.indices.filter { data[$0] == 0x0A }
        guard ends.count >= 2 else { return (data, Data()) }
        let cut = ends[ends.count / 2 - 1] + 1
        return (data.prefix(upTo: cut), data.suffix(from: cut))
    }

    static func lines(_ data: Data) -> Int { data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 } }

    /// `key` of each line of a JSON-lines file (text, or an integer as text); none when absent.
    static func field(_ key: String, of file: URL) throws -> [String] {
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        return try String(decoding: Data(contentsOf: file), as: UTF8.self).split(separator: "\n").map {
            let value = try JSONParser.parse(String($0))[key]
            return value?.stringValue ?? value?.intValue.map(String.init) ?? "?"
        }
    }

    struct Counts: Equatable {
        var agencyEvents, distinctAgencyEvents, bureauEvents, distinctBureauEvents, conflicts, deliveries: Int
    }

    static func counts(_ uri: String) throws -> Counts {
        let row = try Connection(conninfo: uri).query("""
            SELECT count(*) FILTER (WHERE origin = 'agency'), count(DISTINCT event_id) FILTER (WHERE origin = 'agency'),
                   count(*) FILTER (WHERE origin = 'bureau'), count(DISTINCT event_id) FILTER (WHERE origin = 'bureau'),
                   (SELECT count(*) FROM cardsync.conflicts), (SELECT count(*) FROM cardsync.deliveries)
            FROM cardsync.ledger
            """)[0]
        func int(_ i: Int) throws -> Int { Int(try row.decode(Int64.self, at: i)) }
        return Counts(agencyEvents: try int(0), distinctAgencyEvents: try int(1), bureauEvents: try int(2),
                      distinctBureauEvents: try int(3), conflicts: try int(4), deliveries: try int(5))
    }
}

/// Client programs run against a test's own cluster, and its databases.
enum PrivateCluster {
    /// Drops `name` (ending its sessions) and creates it again, empty.
    static func recreate(_ name: String, on cluster: LocalCluster) throws {
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"))
        let quoted = try admin.escapeIdentifier(name)
        try admin.executeScript("DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)")
        try admin.executeScript("CREATE DATABASE \(quoted) ENCODING 'UTF8'")
    }

    /// Runs a PostgreSQL client program of the cluster's version (pg_dump, pg_restore,
    /// pg_basebackup) and throws with its stderr when it fails.
    static func run(_ cluster: LocalCluster, _ tool: String, _ arguments: [String]) throws {
        try runProgram(cluster.binaries.directory.appendingPathComponent(tool), arguments)
    }

    static func runProgram(_ program: URL, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Drill.CLIFailed(arguments: [program.lastPathComponent] + arguments, stderr: String(decoding: message, as: UTF8.self))
        }
    }
}
