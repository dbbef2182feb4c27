import ArgumentParser
import CardCore
import Foundation
import Workload

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write realistic synthetic agency queues and a bureau decision file (same seed, same bytes).",
        discussion: """
            DIR receives queues/ with one queue directory per agency, and beside it bureau-decisions.jsonl \
            (for `cardsync bureau import`) and agencies.json; `cardsync sync DIR/queues/*` then names the \
            queues only. The period ends at local midnight (+08:00) of --end (default: today).

            Examples:
              cardsync generate city --agencies 12 --applications 3000
              cardsync sync city/queues/* && cardsync bureau import city/bureau-decisions.jsonl
              cardsync generate city --agencies 4 --applications 600 --faults 0.02 --seed 7 --end 2026-11-01
            """)

    @Argument(help: "Output directory (created; must be empty).") var dir: String
    @Option(help: "Number of agencies; with two or more the last is the online service.") var agencies: Int
    @Option(help: "Number of applications.") var applications: Int
    @Option(help: "Months of history.") var months = 6
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Share of extra invalid lines in the outboxes (0 to 1), covering every quarantine code.") var faults = 0.0
    @Option(help: "Last day (exclusive) of the period, YYYY-MM-DD.") var end: String?
    @OptionGroup var output: OutputFormatOptions

    func run() throws {
        var endDate = WorkloadSpec.defaultEnd()
        if let end {
            guard let parsed = CivilDate(iso: end) else { throw ValidationError("--end '\(end)' is not a date YYYY-MM-DD") }
            endDate = parsed
        }
        let spec = WorkloadSpec(agencies: agencies, applications: applications, months: months, seed: seed,
                                faultRate: faults, end: endDate)
        if let problem = spec.problem { throw ValidationError(problem) }
        let bar = ProgressBar("generate")
        let summary = try WorkloadGenerator.generate(spec: spec, into: URL(fileURLWithPath: dir), layout: .queuesFolder) { bar.update($0) }
        bar.finish()
        let paths = summary.paths
        if output.isJSON {
            print(JSONWriter.object([
                ("directory", .string(dir)), ("queues", .string(paths.queuesDirectory.path)),
                ("bureau_decisions_file", .string(paths.bureauDecisions.path)), ("agencies_file", .string(paths.agencies.path)),
                ("agencies", .int(Int64(summary.agencies.count))),
                ("applications", .int(Int64(summary.applications))), ("outbox_events", .int(Int64(summary.outboxEvents))),
                ("bureau_decisions", .int(Int64(summary.bureauDecisions))), ("duplicate_pairs", .int(Int64(summary.duplicatePairs))),
                ("injected_faults", .int(Int64(summary.injectedFaults.count))),
                ("period", .string("\(spec.start) – \(spec.end)")),
            ], pretty: true))
        } else {
            print("Wrote \(summary.agencies.count) agency queues under \(paths.queuesDirectory.path): \(summary.applications) applications, "
                  + "\(summary.outboxEvents) outbox events, \(summary.bureauDecisions) bureau decisions "
                  + "(\(paths.bureauDecisions.path)), \(summary.duplicatePairs) duplicate pairs, "
                  + "\(summary.injectedFaults.count) faulty lines; period \(spec.start) to \(spec.end) (exclusive).")
            let queues = DemoCommand.shellWord(paths.queuesDirectory.path)
            print("Next: cardsync sync \(queues)/* && cardsync bureau import \(DemoCommand.shellWord(paths.bureauDecisions.path))")
        }
    }
}
