import CardBench
import ArgumentParser
import CardCore
import CardDatabase
import CardSync
import Foundation
import Logging
import PostgresClient
import Workload

/// `cardsync bench reconcile`: how long `reconcile` takes for one agency whose events all agree
/// with the centre, and how many bytes its digest exchange brings back.
struct BenchReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Benchmark reconcile of an agency whose events and decisions all agree with the centre.",
        discussion: """
            Examples:
              cardsync bench reconcile
              cardsync bench reconcile --events 200000 --runs 3
            """)

    @Option(help: "Outbox events of the agency (about).") var events = 100_000
    @Option(help: "Timed runs.") var runs = 5
    @Option(help: "Random seed of the workload.") var seed: UInt64 = 7
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var db: DatabaseOptions

    func run() throws {
        let bench = try BenchDatabases(selection: db.selection, prefix: "cardsync_bench_reconcile")
        defer { bench.dropAll() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cardsync-bench-reconcile-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = WorkloadSpec(agencies: 1, applications: max(1, Int(Double(events) / 2.2)), months: 12, seed: seed,
                                end: CivilDate(year: 2026, month: 11, day: 1)!)
        printError("generating one agency with about \(events) events…")
        let summary = try WorkloadGenerator.generate(spec: spec, into: dir)
        let queue = QueueDirectory(dir.appendingPathComponent(summary.agencies[0].agency.code))
        let uri = try bench.create("r")
        let connection = try Connection(conninfo: uri)
        _ = try Migrator(connection: connection, logger: Logger(label: "cardsync.migrate")).migrate()
        printError("syncing, importing the bureau's decisions, syncing again…")
        _ = try AgencySync(queue: queue, connection: connection, logger: Logger(label: "cardsync.sync")).run()
        _ = try BureauRecorder(connection: connection, logger: Logger(label: "cardsync.bureau")).importFile(dir.appendingPathComponent("bureau-decisions.jsonl"))
        _ = try AgencySync(queue: queue, connection: connection, logger: Logger(label: "cardsync.sync")).run()
        printError("reconciling \(runs) times…")
        let report = try ReconcileBenchmark.run(queues: [queue], connection: connection, repetitions: runs, logger: Logger(label: "cardsync.reconcile"))
        print(json ? JSONWriter.string(report.json, pretty: true) : report.text)
        if !report.consistent { throw CommandFailure("the agency and the centre disagree after a clean sync: that is a bug") }
    }
}
