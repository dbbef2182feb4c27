import ArgumentParser
import CardCore
import CardDatabase
import CardReports
import CardSync
import Foundation
import PostgresClient
import Workload

/// `cardsync demo`: the whole job end to end on the embedded default, from an empty start.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate a small city, sync it with a fresh central database, let the bureau decide, report.",
        discussion: """
            Uses a fresh database `cardsync_demo` in the embedded cluster (recreated on every run) and a generated \
            city under CARDSYNC_HOME/demo. Nothing else is touched, so running it twice is safe.
            """)

    @Option(help: "Handling agencies, the online service included.") var agencies = 12
    @Option(help: "Applications in the generated city.") var applications = 3_000
    @Option(help: "Months of history.") var months = 4
    @Option(help: "Random seed.") var seed: UInt64 = 2026
    @Option(help: "Share of invalid lines agencies write (quarantined by sync).") var faults = 0.01
    @Option(help: "Agencies synced at once.") var jobs = 2

    static let databaseName = "cardsync_demo"

    func run() throws {
        let selection = DatabaseSelection(flag: nil)
        let home = selection.home
        say("cardsync demo: a generated city, synced with a fresh central database on the embedded cluster")
        say("  cluster: \(home.appendingPathComponent("postgres").path) (Unix socket only)")

        // A fresh database every run: the demo never mixes with real data.
        let cluster = try selection.embeddedCluster()
        try cluster.start()
        let admin = try Connection(conninfo: cluster.connectionURI(database: "postgres"))
        let quoted = try admin.escapeIdentifier(Self.databaseName)
        try admin.executeScript("DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)")
        try admin.executeScript("CREATE DATABASE \(quoted) ENCODING 'UTF8'")
        let uri = cluster.connectionURI(database: Self.databaseName)
        let connection = try Connection(conninfo: uri)
        try Migrator(connection: connection).migrate()
        say("  database: \(Self.databaseName) (created fresh, schema migrated)")

        // The city.
        let city = home.appendingPathComponent("demo/city")
        try? FileManager.default.removeItem(at: city)
        let end = WorkloadSpec.defaultEnd()
        let spec = WorkloadSpec(agencies: agencies, applications: applications, months: months, seed: seed,
                                faultRate: faults, end: end)
        if let problem = spec.problem { throw ValidationError(problem) }
        let generating = ProgressBar("generating city")
        let summary = try WorkloadGenerator.generate(spec: spec, into: city) { generating.update($0) }
        generating.finish()
        say("\n1. Generated \(summary.agencies.count) agency queues in \(city.path): \(summary.applications) applications, "
            + "\(summary.outboxEvents) outbox events (\(summary.injectedFaults.count) of them invalid on purpose), "
            + "\(summary.bureauDecisions) bureau decisions, \(summary.duplicatePairs) children applying at two agencies.")

        let registry = AgencyRegistry(connection: connection)
        for counts in summary.agencies { try registry.add(counts.agency) }
        let queues = summary.agencies.map { QueueDirectory(city.appendingPathComponent($0.agency.code)) }

        // First sync: agencies push what their counters recorded.
        let first = try syncAll(queues, uri: uri, label: "2. agencies push")
        say("2. First sync: \(first.totals.pushed) events pushed, \(first.totals.quarantined) lines quarantined, "
            + "\(first.totals.pending) waiting for the bureau (pending), \(first.totals.conflictsOpened) conflicts.")

        // The bureau decides.
        let report = try BureauRecorder(connection: connection).importFile(city.appendingPathComponent("bureau-decisions.jsonl"))
        say("3. The bureau imported \(report.merged.accepted) decisions (approvals, rejections, returns, card production "
            + "and dispatch); \(report.merged.conflictsOpened) conflicts.")

        // Second sync: counters pull the decisions and learn which cards to hand over.
        let second = try syncAll(queues, uri: uri, label: "4. agencies pull")
        say("4. Second sync: \(second.totals.pulled) decisions pulled into the agencies' inboxes.")

        say("\nPer agency (both syncs):")
        var rows: [[String]] = []
        for (a, b) in zip(first.rows, second.rows) {
            rows.append([a.agencyCode, "\(a.pushed + b.pushed)", "\(a.quarantined + b.quarantined)",
                         "\(a.pulled + b.pulled)", "\(a.conflictsOpened + b.conflictsOpened)"])
        }
        say(TextTable(headers: ["agency", "pushed", "quarantined", "pulled", "conflicts"], rows: rows,
                      rightAligned: [1, 2, 3, 4]).render())

        let open = try connection.query("""
            SELECT kind, count(*) AS n FROM cardsync.conflicts WHERE status = 'open' GROUP BY kind ORDER BY kind
            """)
        let kinds = try open.map { "\(try $0.decode(String.self, column: "kind")): \(try $0.decode(Int64.self, column: "n"))" }
        say("Open conflicts for review: \(kinds.isEmpty ? "none" : kinds.joined(separator: ", ")) (cardsync conflicts list)")

        let verification = try ProjectionVerifier(connection: connection).verify()
        say(verification.isClean ? "Verified: the projection equals a fold of the ledger (\(verification.eventsReplayed) events)."
                                 : "VERIFY FOUND DIFFERENCES:\n\(verification.text)")

        // The monthly report of the latest complete month.
        let month = YearMonth(end).previous
        let monthly = try runMonthlyReport(MonthlyReportQuery(month: month), on: connection)
        say("\nMonthly card issuance report, \(month):\n")
        say(render(monthly, format: .text, lang: .en))
        let html = home.appendingPathComponent("demo/monthly-\(month).html")
        try render(monthly, format: .html, lang: .zh).write(to: html, atomically: true, encoding: .utf8)
        say("\nHTML report (Chinese): \(html.path)")
        let me = ChildProcess.selfPath
        say("Try: \(me) queue status \(queues[0].path)")
        say("     \(me) conflicts list --database '\(uri)'")
        if !verification.isClean { throw ExitCode(1) }
    }

    private func syncAll(_ queues: [QueueDirectory], uri: String, label: String) throws -> SyncReport {
        let bar = ProgressBar(label)
        let runner = SyncRunner(connect: { try Connection(conninfo: uri) })
        let started = ContinuousClock.now
        let results = runner.run(queues, jobs: jobs) { finished, done, total in
            bar.update(total > 0 ? Double(done) / Double(total) : 0, note: "\(finished)/\(queues.count) agencies")
        }
        bar.finish()
        let report = SyncReport(queues: queues, results: results, elapsed: (ContinuousClock.now - started).seconds)
        if let failure = report.failures.first { throw CommandFailure("sync of \(failure.queue) failed: \(failure.message)") }
        return report
    }

    private func say(_ text: String) { print(text) }
}
