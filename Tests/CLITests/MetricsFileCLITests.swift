import Foundation
import PostgresClient
import TestSupport
import Testing

/// `--metrics-file` on `sync`, `merge` and `status` (docs/monitoring.md): every file is read
/// back with a real parser of the Prometheus text format (Python's prometheus_client), and the
/// alert rules in Deploy/monitoring/alerts.yml name only metrics cardsync writes.
@Suite struct MetricsFileCLITests {
    @Test func syncCountersGrowAcrossRunsAndKeepOtherSeries() throws {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-metrics-sync")
        defer { dir.remove() }
        let queue = dir.path + "/CS-MT-001"
        let metrics = dir.path + "/prom/sync.prom"
        try FileManager.default.createDirectory(atPath: dir.path + "/prom", withIntermediateDirectories: true)
        // A series another run wrote, with a label value that needs every escape of the format:
        // it must be kept, byte for byte, and still parse.
        try #"cardsync_sync_events_pushed_total{agency="A \"B\\\n"} 7"#.appending("\n")
            .write(toFile: metrics, atomically: true, encoding: .utf8)
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-MT-001"]).status == 0)
        #expect(try CLIRunner.run(["queue", "append", queue, "-"], stdin: StatusCLITests.submittedLine() + "\n").status == 0)
        let first = try CLIRunner.run(["sync", queue, "--database", db, "--metrics-file", metrics])
        #expect(first.status == 0, "\(first.stderr)")
        let once = try PrometheusText.parse(file: metrics)
        #expect(once.value("cardsync_sync_events_pushed_total", ["agency": "CS-MT-001"]) == 1)
        #expect(once.value("cardsync_sync_events_pushed_total", ["agency": "A \"B\\\n"]) == 7)
        #expect(once.value("cardsync_sync_successes_total", ["agency": "CS-MT-001"]) == 1)
        #expect(once.value("cardsync_sync_failures_total", [:]) == 0)
        let lastSuccess = try #require(once.value("cardsync_sync_last_success_timestamp_seconds", ["agency": "CS-MT-001"]))
        #expect(lastSuccess > 1_700_000_000)

        // A second run with one more event and a line that fails the queue rules (written past
        // `queue append`, as a broken client would): counters add up, quarantine is counted.
        #expect(try CLIRunner.run(["queue", "append", queue, "-"], stdin: StatusCLITests.submittedLine() + "\n").status == 0)
        let outbox = try FileHandle(forWritingTo: URL(fileURLWithPath: queue + "/outbox.jsonl"))
        try outbox.seekToEnd()
        try outbox.write(contentsOf: Data("{\"seq\": 3, \"not\": \"an event\"}\n".utf8))
        try outbox.close()
        let second = try CLIRunner.run(["sync", queue, "--database", db, "--metrics-file", metrics])
        #expect(second.status == 0, "\(second.stderr)")
        let twice = try PrometheusText.parse(file: metrics)
        #expect(twice.value("cardsync_sync_events_pushed_total", ["agency": "CS-MT-001"]) == 2)
        #expect(twice.value("cardsync_sync_lines_quarantined_total", ["agency": "CS-MT-001"]) == 1)
        #expect(twice.value("cardsync_sync_successes_total", ["agency": "CS-MT-001"]) == 2)
        #expect(twice.value("cardsync_sync_events_pushed_total", ["agency": "A \"B\\\n"]) == 7)
        // Written through a temporary file that was renamed: nothing else is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/prom") == ["sync.prom"])

        // A queue that cannot be synced still leaves a valid file, counting the failure.
        let failed = try CLIRunner.run(["sync", dir.path + "/no-such-queue", "--database", db, "--metrics-file", metrics])
        #expect(failed.status == 1)
        let after = try PrometheusText.parse(file: metrics)
        #expect(after.value("cardsync_sync_failures_total", [:]) == 1)
        #expect(after.value("cardsync_sync_successes_total", ["agency": "CS-MT-001"]) == 2)
    }

    @Test func mergeAndMergeFollowWriteTheirTotals() throws {
        let world = try StagingWorld(prefix: "cardsync-metrics-merge")
        defer { world.dir.remove() }
        let metrics = world.dir.path + "/merge.prom"
        try world.stagedSync(events: 2)
        let merge = try CLIRunner.run(["merge", "--database", world.bureauURI, "--metrics-file", metrics])
        #expect(merge.status == 0, "\(merge.stderr)")
        let once = try PrometheusText.parse(file: metrics)
        #expect(once.value("cardsync_merge_batches_total", [:]) == 1)
        #expect(once.value("cardsync_merge_lines_total", [:]) == 2)
        #expect(once.value("cardsync_merge_events_accepted_total", [:]) == 2)
        #expect(once.value("cardsync_merge_last_round_timestamp_seconds", [:]) != nil)

        // --follow rewrites the file after each round; the counters go on from the file.
        let follow = Process()
        follow.executableURL = URL(fileURLWithPath: CLIRunner.executable)
        follow.arguments = ["merge", "--follow", "--poll-interval", "0.2", "--database", world.bureauURI, "--metrics-file", metrics]
        follow.environment = ProcessInfo.processInfo.environment.filter { $0.key != "CARDSYNC_DATABASE_URL" }
        follow.standardOutput = FileHandle.nullDevice
        try follow.run()
        defer { if follow.isRunning { follow.terminate(); follow.waitUntilExit() } }
        try world.stagedSync(events: 1)
        // Waits for the service's round, however long the machine takes (no timing asserted).
        var merged: Double?
        for _ in 0..<600 where merged != 2 {
            Thread.sleep(forTimeInterval: 0.1)
            merged = try? PrometheusText.parse(file: metrics).value("cardsync_merge_batches_total", [:])
        }
        #expect(merged == 2)
        follow.terminate()
        follow.waitUntilExit()
        #expect(follow.terminationStatus == 0)
        let final = try PrometheusText.parse(file: metrics)
        #expect(final.value("cardsync_merge_batches_total", [:]) == 2)
        #expect(final.value("cardsync_merge_lines_total", [:]) == 3)
    }

    @Test func alertRulesNameOnlyMetricsCardsyncWrites() throws {
        let world = try StagingWorld(prefix: "cardsync-metrics-alerts")
        defer { world.dir.remove() }
        try world.stagedSync(events: 1)
        let files = ["sync", "merge", "status"].map { world.dir.path + "/\($0).prom" }
        _ = try CLIRunner.run(["sync", world.ownerQueue, "--database", world.db, "--metrics-file", files[0]])
        _ = try CLIRunner.run(["merge", "--database", world.bureauURI, "--metrics-file", files[1]])
        _ = try CLIRunner.run(["status", "--database", world.bureauURI, "--metrics-file", files[2]])
        var written = Set<String>()
        for file in files {
            for family in try PrometheusText.parse(file: file).families {
                written.insert(family.name)
                // Counters are read as family + "_total", as Prometheus stores them.
                if family.type == "counter" { written.insert(family.name + "_total") }
            }
        }
        let rules = PrometheusText.repository.appendingPathComponent("Deploy/monitoring/alerts.yml").path
        let names = try PrometheusText.python("""
            import json, re, sys, yaml
            doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
            names, alerts = set(), []
            for group in doc["groups"]:
                for rule in group["rules"]:
                    alerts.append(rule["alert"])
                    assert rule["labels"]["severity"], rule["alert"]
                    assert rule["annotations"]["summary"], rule["alert"]
                    names.update(re.findall(r"\\bcardsync_[a-z_]+", rule["expr"]))
            print(json.dumps({"names": sorted(names), "alerts": alerts}))
            """, arguments: [rules])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(names.utf8)) as? [String: [String]])
        let used = doc["names"] ?? []
        #expect(!used.isEmpty)
        for name in used { #expect(written.contains(name), "alerts.yml uses \(name), which no cardsync metrics file holds") }
        for alert in ["CardsyncAgencyStale", "CardsyncMergeLagging", "CardsyncConflictsOpenTooLong"] {
            #expect(doc["alerts"]?.contains(alert) == true, "\(doc)")
        }
        // promtool, where installed, checks the rules as Prometheus will load them.
        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: FileManager.default.isExecutableFile(atPath:)) {
            let check = Process()
            check.executableURL = URL(fileURLWithPath: promtool)
            check.arguments = ["check", "rules", rules]
            try check.run()
            check.waitUntilExit()
            #expect(check.terminationStatus == 0)
        }
    }
}

/// A central database with an agency that syncs with its own role, another that syncs as the
/// owner, and a login role of the bureau's. Roles belong to the whole test cluster: unique names.
struct StagingWorld {
    let db: String
    let dir: TemporaryDirectory
    let agency: String
    let agencyURI: String
    let bureauURI: String
    let stagedQueue: String
    let ownerQueue: String

    init(prefix: String) throws {
        db = try TestDatabase.migratedDatabase()
        dir = try TemporaryDirectory(prefix: prefix)
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8))
        agency = "ST\(tag)"
        #expect(try CLIRunner.run(["agency", "add", agency, "--name", "Staging \(tag)", "--database", db]).status == 0)
        let credentials = try CLIRunner.run(["agency", "credentials", agency, "--json", "--database", db])
        let role = try #require((try JSONSerialization.jsonObject(with: Data(credentials.stdout.utf8)) as? [String: String])?["role"],
                                "\(credentials.stderr)")
        let bureau = "t_status_bureau_\(tag.lowercased())"
        let admin = try Connection(conninfo: db)
        try admin.executeScript("CREATE ROLE \(try admin.escapeIdentifier(bureau)) LOGIN IN ROLE cardsync_bureau")
        // The test cluster trusts its Unix socket: the roles' privileges are what is tested.
        precondition(db.contains("&user=postgres"))
        agencyURI = db.replacingOccurrences(of: "&user=postgres", with: "&user=\(role)")
        bureauURI = db.replacingOccurrences(of: "&user=postgres", with: "&user=\(bureau)")
        stagedQueue = dir.path + "/" + agency
        ownerQueue = dir.path + "/OW\(tag)"
        #expect(try CLIRunner.run(["queue", "init", stagedQueue, "--agency", agency]).status == 0)
        #expect(try CLIRunner.run(["queue", "init", ownerQueue, "--agency", "OW\(tag)"]).status == 0)
    }

    /// Appends `events` submissions and syncs them with the agency's own role, not waiting for
    /// the merge: they stay staged until a `cardsync merge`.
    func stagedSync(events: Int) throws {
        let lines = (0..<events).map { _ in StatusCLITests.submittedLine() }.joined(separator: "\n") + "\n"
        let appended = try CLIRunner.run(["queue", "append", stagedQueue, "-"], stdin: lines)
        #expect(appended.status == 0, "\(appended.stderr)")
        let sync = try CLIRunner.run(["sync", stagedQueue, "--merge-wait", "0", "--database", agencyURI])
        #expect(sync.status == 0, "\(sync.stderr)")
    }
}

/// Reads a metrics file with prometheus_client's parser, the one Python exporters and many
/// tools use, after checking what that parser lets pass: every metric has HELP and TYPE.
struct PrometheusText {
    struct Family {
        var name: String
        var type: String
        var samples: [(name: String, labels: [String: String], value: Double)]
    }

    var families: [Family]

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func value(_ sample: String, _ labels: [String: String]) -> Double? {
        families.lazy.flatMap(\.samples).first { $0.name == sample && $0.labels == labels }?.value
    }

    static func parse(file: String) throws -> PrometheusText {
        let out = try python("""
            import json, re, sys
            try:
                from prometheus_client.parser import text_string_to_metric_families
            except ImportError as error:
                sys.exit("prometheus_client cannot be imported (pip install prometheus_client): %s" % error)
            text = open(sys.argv[1], encoding="utf-8").read()
            declared = {}
            for line in text.splitlines():
                m = re.match(r"# (HELP|TYPE) (\\S+) (.*)", line)
                if m:
                    declared.setdefault(m.group(2), set()).add(m.group(1))
                elif line.strip():
                    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
                    assert declared.get(name) == {"HELP", "TYPE"}, "sample before its HELP and TYPE: " + line
            families = []
            for f in text_string_to_metric_families(text):
                assert f.name.startswith("cardsync_"), f.name
                assert f.type in ("counter", "gauge"), (f.name, f.type)
                assert f.documentation, f.name
                families.append({"name": f.name, "type": f.type,
                                 "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
            print(json.dumps(families))
            """, arguments: [file])
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        return PrometheusText(families: raw.map { f in
            Family(name: f["name"] as? String ?? "", type: f["type"] as? String ?? "",
                   samples: (f["samples"] as? [[String: Any]] ?? []).map {
                       ($0["name"] as? String ?? "", $0["labels"] as? [String: String] ?? [:], ($0["value"] as? NSNumber)?.doubleValue ?? .nan)
                   })
        })
    }

    /// Runs a Python 3 program; a non-zero exit (an assertion, a parse error, a missing module)
    /// fails the test with what Python printed.
    static func python(_ program: String, arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", program] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CLIError("python3 failed (\(process.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))")
        }
        return String(decoding: stdout, as: UTF8.self)
    }
}
