import CardCore
import Foundation
import Logging
import CardSync
import PostgresClient

/// `cardsync bench reconcile`: how long reconcile takes, and how much it transfers, for agency
/// queues that already agree with the centre (the common case: a routine check).
///
/// The queues must have been synced; the benchmark only reads (no `--repair`). Each run
/// reconciles every queue once, one after the other, on one connection.
public enum ReconcileBenchmark {
    public struct Report: Sendable {
        /// Per queue, the last run's result.
        public var agencies: [AgencyReconcileResult] = []
        /// Wall-clock seconds of each run (all queues).
        public var runs: [Double] = []

        public var best: Double { runs.min() ?? 0 }
        public var median: Double {
            let s = runs.sorted()
            return s.isEmpty ? 0 : s[s.count / 2]
        }
        public var agencyEvents: Int { agencies.reduce(0) { $0 + $1.agencyEvents } }
        public var agencyDecisions: Int { agencies.reduce(0) { $0 + $1.agencyDecisions } }
        public var bytesReceived: Int { agencies.reduce(0) { $0 + $1.bytesReceived } }
        public var consistent: Bool { agencies.allSatisfy(\.isConsistent) }

        public var json: JSONValue {
            [
                "benchmark": "reconcile",
                "agencies": .int(Int64(agencies.count)),
                "agency_events": .int(Int64(agencyEvents)),
                "agency_decisions": .int(Int64(agencyDecisions)),
                "consistent": .bool(consistent),
                "bytes_received": .int(Int64(bytesReceived)),
                "runs_seconds": .array(runs.map { .double(($0 * 1000).rounded() / 1000) }),
                "best_seconds": .double((best * 1000).rounded() / 1000),
                "median_seconds": .double((median * 1000).rounded() / 1000),
                "per_agency": .array(agencies.map {
                    ["agency_code": .string($0.agencyCode), "events": .int(Int64($0.agencyEvents)),
                     "decisions": .int(Int64($0.agencyDecisions)), "bytes_received": .int(Int64($0.bytesReceived)),
                     "seconds": .double(($0.seconds * 1000).rounded() / 1000)]
                }),
            ]
        }

        public var text: String {
            let kib = Double(bytesReceived) / 1024
            return String(format: "reconcile: %d agencies, %d events and %d decisions at the agencies, %@; best %.3f s, median %.3f s over %d runs; %.1f KiB received from the centre per run",
                          agencies.count, agencyEvents, agencyDecisions, consistent ? "all agree" : "DIVERGENT",
                          best, median, runs.count, kib)
        }
    }

    /// Reconciles every queue `repetitions` times (read-only) and times each run.
    public static func run(queues: [QueueDirectory], connection: Connection, repetitions: Int = 3,
                           options: ReconcileOptions = ReconcileOptions(), logger: Logger) throws -> Report {
        var options = options
        options.repair = false
        var report = Report()
        for _ in 0..<max(1, repetitions) {
            let started = ContinuousClock.now
            var results: [AgencyReconcileResult] = []
            for queue in queues {
                results.append(try AgencyReconcile(queue: queue, connection: connection, options: options, logger: logger).run())
            }
            report.runs.append((ContinuousClock.now - started).seconds)
            report.agencies = results
        }
        return report
    }
}
