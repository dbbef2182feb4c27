import ArgumentParser
import CardCore
import CardDatabase
import CardReports
import CardSync
import Foundation
import Logging
import PostgresClient
import Workload

/// `cardsync demo`: the whole job end to end on the embedded default, from an empty start.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate a small city, sync it with a fresh central database, let the bureau decide, report.",
        discussion: """
            Uses a fresh database `cardsync_demo` in the embedded cluster (recreated on every run) and a generated \
            city under CARDSYNC_HOME/demo. Nothing else is touched, so running it twice is safe. Afterwards \
            `--database demo`, or `export CARDSYNC_DATABASE_URL=demo` once, points later commands at the demo's \
            database; cardsync db stop stops the cluster.

            Examples:
              cardsync demo
              cardsync demo --agencies 4 --applications 600
              export CARDSYNC_DATABASE_URL=demo; cardsync conflicts list
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
        _ = try Migrator(connection: connection, logger: Logger(label: "cardsync.migrate")).migrate()
        say("  database: \(Self.databaseName) (created fresh, schema migrated)")

        // The city.
        let city = home.appendingPathComponent("demo/city")
        try? FileManager.default.removeItem(at: city)
        let end = WorkloadSpec.defaultEnd()
        let spec = WorkloadSpec(agencies: agencies, applications: applications, months: months, seed: seed,
                                faultRate: faults, end: end)
        if let problem = spec.problem { throw ValidationError(problem) }
        let generating = ProgressBar("generating city")
        let summary = try WorkloadGenerator.generate(spec: spec, into: city, layout: .queuesFolder) { generating.update($0) }
        generating.finish()
        say("\n1. Generated \(summary.agencies.count) agency queues in \(summary.paths.queuesDirectory.path): \(summary.applications) applications, "
            + "\(summary.outboxEvents) outbox events (\(summary.injectedFaults.count) of them invalid on purpose), "
            + "\(summary.bureauDecisions) bureau decisions, \(summary.duplicatePairs) children applying at two agencies.")

        let registry = AgencyRegistry(connection: connection)
        for counts in summary.agencies { try registry.add(counts.agency) }
        let queues = summary.agencies.map { QueueDirectory(summary.paths.queue($0.agency.code)) }

        // First sync: agencies push what their counters recorded.
        let first = try syncAll(queues, uri: uri, label: "2. agencies push")
        say("2. First sync: \(first.totals.pushed) events pushed, \(first.totals.quarantined) lines quarantined, "
            + "\(first.totals.pending) waiting for the bureau (pending), \(first.totals.conflictsOpened) conflicts.")

        // The bureau decides.
        let importing = ProgressBar("3. bureau decides")
        let report = try BureauRecorder(connection: connection, logger: Logger(label: "cardsync.bureau")).importFile(
            summary.paths.bureauDecisions, batchSize: importing.isEnabled ? 2_000 : 20_000) { done, total in
            importing.update(total > 0 ? Double(done) / Double(total) : 1)
        }
        importing.finish()
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
        say("")
        say(Self.nextSteps(queue: queues[0].path, month: month.description))
        if !verification.isClean { throw ExitCode(1) }
    }

    /// What to type next, line by line as a person would type it: the demo database by its short
    /// name (`demo`) rather than the cluster's socket URI, `cardsync` by name (with an alias line
    /// first when this executable is not the one on PATH), paths under HOME as `~/…`.
    static func nextSteps(queue: String, month: String,
                          environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var lines = ["Next: point this shell's later commands at the demo database (unset CARDSYNC_DATABASE_URL to go back):"]
        let me = ChildProcess.selfPath
        if onPath(environment: environment) != URL(fileURLWithPath: me).resolvingSymlinksInPath().path {
            lines.append("  alias cardsync=\(shellWord(me))    # this cardsync is not the one on PATH")
        }
        lines += [
            "  export CARDSYNC_DATABASE_URL=\(DatabaseOptions.demoAlias)",
            "  cardsync queue status \(shellWord(tilde(queue, environment: environment)))",
            "  cardsync queue quarantine \(shellWord(tilde(queue, environment: environment)))",
            "  cardsync conflicts list",
            "  cardsync report monthly --month \(month) --lang zh",
            "  cardsync db stop    # when done: stops the embedded cluster",
            "Or on a single command: cardsync conflicts list --database \(DatabaseOptions.demoAlias)",
        ]
        return lines.joined(separator: "\n")
    }

    /// The `cardsync` the shell would run, symlinks resolved, or nil.
    static func onPath(environment: [String: String]) -> String? {
        for dir in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("cardsync")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.resolvingSymlinksInPath().path }
        }
        return nil
    }

    /// `~/x` for a path under HOME (the shell expands it back), else the path.
    static func tilde(_ path: String, environment: [String: String]) -> String {
        guard let home = environment["HOME"], !home.isEmpty, home != "/" else { return path }
        let prefix = home.hasSuffix("/") ? home : home + "/"
        return path.hasPrefix(prefix) ? "~/" + path.dropFirst(prefix.count) : path
    }

    /// A path as one shell word: unchanged when it has only safe characters (a leading `~/` kept
    /// outside the quotes so that the shell still expands it), else in single quotes.
    static func shellWord(_ text: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "/._-+=:,@~"))
        if text.unicodeScalars.allSatisfy(safe.contains) { return text }
        let quote = { (s: Substring) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return text.hasPrefix("~/") ? "~/" + quote(text.dropFirst(2)) : quote(Substring(text))
    }

    private func syncAll(_ queues: [QueueDirectory], uri: String, label: String) throws -> SyncReport {
        let bar = ProgressBar(label)
        let runner = SyncRunner(connect: { try Connection(conninfo: uri) }, logger: Logger(label: "cardsync.sync"))
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
