import CardCore
import Foundation

/// What `cardsync generate` produces: how many agencies and applications, over which period,
/// from which seed, with which share of faulty lines.
///
/// The period is the `months` calendar months that end at local midnight (+08:00) starting
/// `end`: no generated event occurs at or after `end` 00:00 +08:00. `end` is explicit so that
/// the same spec always gives the same bytes; a command line picks a default with
/// `WorkloadSpec.defaultEnd(now:)`.
public struct WorkloadSpec: Sendable, Hashable {
    /// Number of agencies (≥ 1). With two or more, the last one is the online service `CS-ONLINE`.
    public var agencies: Int
    /// Number of applications (application ids), duplicate submissions included (≥ 0).
    public var applications: Int
    /// Length of the period in calendar months (≥ 1).
    public var months: Int
    public var seed: UInt64
    /// Extra invalid lines in the outboxes, as a share of the valid lines (0...1). Any positive
    /// rate injects at least one line of every quarantine code.
    public var faultRate: Double
    /// The exclusive end of the period: events occur before this day's 00:00 +08:00.
    public var end: CivilDate

    public init(agencies: Int, applications: Int, months: Int = 6, seed: UInt64 = 1, faultRate: Double = 0,
                end: CivilDate) {
        self.agencies = agencies
        self.applications = applications
        self.months = months
        self.seed = seed
        self.faultRate = faultRate
        self.end = end
    }

    /// The first day of the period: `end` minus `months` months (day clamped to the month's length).
    public var start: CivilDate {
        let index = end.year * 12 + (end.month - 1) - months
        let year = index / 12, month = index % 12 + 1
        return CivilDate(year: year, month: month, day: min(end.day, Timestamp.daysInMonth(year: year, month: month)))!
    }

    /// The instant the period ends (exclusive): `end` at 00:00 +08:00.
    public var endInstant: Timestamp {
        Timestamp(microseconds: ShanghaiTime.instant(day: end.dayNumber, second: 0) * 1_000_000,
                  offsetSeconds: Int32(ShanghaiTime.offset))
    }

    /// A sensible default `end` for a command line: today in China Standard Time, so that the
    /// period ends at the last midnight and every event lies in the past.
    public static func defaultEnd(now: Date = Date()) -> CivilDate {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        return CivilDate(dayNumber: ShanghaiTime.day(of: seconds))
    }

    /// Why the spec cannot be generated, or `nil`.
    public var problem: String? {
        if agencies < 1 { return "--agencies must be at least 1" }
        if agencies > 9 * 999 { return "--agencies must be at most 8991" }
        if applications < 0 { return "--applications must not be negative" }
        if months < 1 || months > 240 { return "--months must be between 1 and 240" }
        if !(faultRate >= 0 && faultRate <= 1) { return "--faults must be between 0 and 1" }
        if start.year < 1990 { return "the period must start in 1990 or later" }
        return nil
    }
}

/// What a generation produced, for tests, the demo and the command's summary line.
public struct WorkloadSummary: Sendable {
    public struct AgencyCounts: Sendable {
        public var agency: Agency
        /// Valid lines in `outbox.jsonl`.
        public var outboxEvents: Int
        /// Injected invalid lines in `outbox.jsonl`.
        public var faultyLines: Int
        /// Applications whose `submitted` this agency recorded.
        public var applications: Int
        /// Valid outbox lines by type.
        public var eventsByType: [EventType: Int]
    }

    public var spec: WorkloadSpec
    /// Where everything was written.
    public var paths: WorkloadPaths
    /// In directory order; the online agency last.
    public var agencies: [AgencyCounts]
    /// Application ids, duplicate submissions included.
    public var applications: Int
    /// Pairs of applications for the same child at two agencies (the second is the duplicate).
    public var duplicatePairs: Int
    /// Valid lines over all outboxes.
    public var outboxEvents: Int
    /// Lines in `bureau-decisions.jsonl`.
    public var bureauDecisions: Int
    /// Valid events (outboxes and bureau decisions) by type.
    public var eventsByType: [EventType: Int]
    /// Injected invalid lines, each with the quarantine code it must get.
    public var injectedFaults: [InjectedFault]
    public var faultsByCode: [QuarantineCode: Int]

    /// Valid events in all: outbox lines plus bureau decisions.
    public var totalEvents: Int { outboxEvents + bureauDecisions }
}

/// One injected invalid outbox line and the quarantine code a correct validator gives it.
public struct InjectedFault: Sendable, Hashable {
    public var agencyCode: String
    /// 1-based line number in the agency's `outbox.jsonl`.
    public var line: Int
    public var code: QuarantineCode
}

public enum WorkloadError: Error, CustomStringConvertible, Sendable {
    case invalidSpec(String)
    case directoryNotEmpty(String)
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case .invalidSpec(let message): return message
        case .directoryNotEmpty(let path):
            return "\(path) is not empty: generate writes into a new or empty directory; choose another or remove it"
        case .io(let path, let message): return "cannot write \(path): \(message)"
        }
    }
}

/// Where a generation puts its queues.
public enum WorkloadLayout: Sendable, Equatable {
    /// `DIR/queues/<CODE>/`, the decisions and the agency list beside `queues`: what `cardsync
    /// generate` and the demo write, so that `cardsync sync DIR/queues/*` names queues only.
    case queuesFolder
    /// `DIR/<CODE>/` beside the decisions and the agency list: the earlier layout, kept as the
    /// library's default for the callers written against it (benchmarks, fixtures).
    case flat
}

/// The paths of a generated workload.
public struct WorkloadPaths: Sendable, Equatable {
    public var root: URL
    public var layout: WorkloadLayout

    public init(root: URL, layout: WorkloadLayout) {
        self.root = root
        self.layout = layout
    }

    /// The folder that holds one queue directory per agency (and nothing else, with
    /// `.queuesFolder`).
    public var queuesDirectory: URL {
        layout == .queuesFolder ? root.appendingPathComponent(WorkloadFiles.queuesFolder, isDirectory: true) : root
    }

    /// The queue directory of one agency.
    public func queue(_ code: String) -> URL { queuesDirectory.appendingPathComponent(code, isDirectory: true) }

    /// `DIR/bureau-decisions.jsonl`, for `cardsync bureau import`.
    public var bureauDecisions: URL { root.appendingPathComponent(WorkloadFiles.bureauDecisionsFile) }

    /// `DIR/agencies.json`, for registration.
    public var agencies: URL { root.appendingPathComponent(WorkloadFiles.agenciesFile) }
}

/// The file names `generate` writes.
public enum WorkloadFiles {
    /// `DIR/queues`: the agencies' queue directories, with `WorkloadLayout.queuesFolder`.
    public static let queuesFolder = "queues"
    /// Per agency: `agency.json` and `outbox.jsonl` in its queue directory (`WorkloadPaths.queue`).
    public static let agencyFile = "agency.json"
    public static let outboxFile = "outbox.jsonl"
    /// `DIR/bureau-decisions.jsonl`: the bureau's decisions, for `cardsync bureau import`.
    public static let bureauDecisionsFile = "bureau-decisions.jsonl"
    /// `DIR/agencies.json`: every agency, for registration (`[{"code", "name", "district", "channel"}]`).
    public static let agenciesFile = "agencies.json"
    public static let queueFormat = "cardsync.queue.v1"
}
