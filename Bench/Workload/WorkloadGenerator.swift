import CardCore
import Foundation

/// Generates a synthetic but realistic workload: one queue directory per agency, the bureau's
/// decisions, and the list of agencies (`cardsync generate`).
///
/// ```
/// DIR/agencies.json                   [{"code", "name", "district", "channel"}, ...] for registration
/// DIR/bureau-decisions.jsonl          the bureau's events in its time order (`cardsync bureau import`)
/// DIR/queues/<CODE>/agency.json       {"format": "cardsync.queue.v1", "agency": {...}}
/// DIR/queues/<CODE>/outbox.jsonl      the events recorded at that agency, seq from 1
/// ```
///
/// With `WorkloadLayout.flat` (the library's default, for its earlier callers) the queues are
/// `DIR/<CODE>/` instead; `WorkloadSummary.paths` says where each file is either way.
///
/// The same spec gives the same bytes. Each agency's outbox holds only what that agency
/// recorded: `submitted`, `amended`, `documents_verified`, `withdrawn` for its own applications
/// and `card_issued` for the cards dispatched to it, in `occurred_at` order. Lifecycles stop at
/// the end of the period.
public enum WorkloadGenerator {
    /// The agencies a spec produces, in directory order: counters spread over Changsha's nine
    /// districts (`CS-FR-001`, ...), then, with two or more agencies, the online service `CS-ONLINE`.
    public static func agencies(count: Int) -> [Agency] { agencyInfos(count: count).map(\.agency) }

    static func agencyInfos(count: Int) -> [AgencyInfo] {
        guard count >= 1 else { return [] }
        let counters = count >= 2 ? count - 1 : count
        let districts = ChangshaData.districts
        var used: Set<String> = []
        var result: [AgencyInfo] = []
        for i in 0..<counters {
            let d = i % districts.count, k = i / districts.count
            let district = districts[d]
            var name: String
            switch k {
            case 0: name = district.name + "社保卡服务网点"
            case 1: name = district.name + "政务服务中心社保卡窗口"
            default:
                let j = k - 2
                let road = district.roads[j % district.roads.count]
                name = ChangshaData.banks[(j / district.roads.count + d) % ChangshaData.banks.count] + road + "支行"
            }
            var n = 2
            let plain = name
            while !used.insert(name).inserted { name = plain + "第" + String(n) + "网点"; n += 1 }
            var number = String(k + 1)
            while number.count < 3 { number = "0" + number }
            result.append(AgencyInfo(
                agency: Agency(code: "CS-" + district.abbreviation + "-" + number, name: name,
                               district: district.name, channel: .counter),
                district: d))
        }
        if count >= 2 {
            result.append(AgencyInfo(
                agency: Agency(code: "CS-ONLINE", name: "长沙市社保卡网上服务大厅", district: "长沙市", channel: .online),
                district: nil))
        }
        return result
    }

    /// Writes the workload into `directory` (created if missing; it must be empty).
    /// `progress` receives fractions from 0 to 1 on the calling thread.
    @discardableResult
    public static func generate(spec: WorkloadSpec, into directory: URL, layout: WorkloadLayout = .flat,
                                progress: ((Double) -> Void)? = nil) throws -> WorkloadSummary {
        if let problem = spec.problem { throw WorkloadError.invalidSpec(problem) }
        let fm = FileManager.default
        let root = directory.path
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: root, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw WorkloadError.io(path: root, message: "it is a file, not a directory") }
            let entries = (try? fm.contentsOfDirectory(atPath: root)) ?? []
            guard entries.isEmpty else { throw WorkloadError.directoryNotEmpty(root) }
        } else {
            do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
                throw WorkloadError.io(path: root, message: error.localizedDescription)
            }
        }
        let report = progress ?? { _ in }
        let paths = WorkloadPaths(root: directory, layout: layout)

        // 1. Lifecycles.
        let infos = agencyInfos(count: spec.agencies)
        var simulation = Simulation(spec: spec, agencies: infos)
        simulation.run(applications: spec.applications) { report($0 * 0.45) }
        let renderer = Renderer(simulation: simulation)

        // 2. Where the faults go: after a valid line drawn uniformly over all outboxes.
        let validCounts = simulation.outboxes.map(\.count)
        let totalValid = validCounts.reduce(0, +)
        var faultRNG = Xoshiro256(seed: spec.seed ^ 0xFA17_5EED_0BAD_1DEA)
        var plan = Array(repeating: [(after: Int, code: QuarantineCode)](), count: infos.count)
        if spec.faultRate > 0, totalValid > 0 {
            let count = max(QuarantineCode.allCases.count, Int((spec.faultRate * Double(totalValid)).rounded()))
            var codes = QuarantineCode.allCases
            for i in stride(from: codes.count - 1, to: 0, by: -1) { codes.swapAt(i, faultRNG.below(i + 1)) }
            let repeatable = QuarantineCode.allCases.filter { $0 != .lineTooLong }
            while codes.count < count { codes.append(faultRNG.pick(repeatable)) }
            let prefix = cumulative(validCounts.map(Double.init))
            for code in codes {
                let g = faultRNG.below(totalValid)
                var agency = 0
                while Int(prefix[agency]) <= g { agency += 1 }
                let offset = g - (agency == 0 ? 0 : Int(prefix[agency - 1]))
                plan[agency].append((offset, code))
            }
            for i in plan.indices { plan[i].sort { $0.after < $1.after } }   // stable: keeps draw order on ties
        }
        var factory = FaultFactory(rng: faultRNG)

        // 3. Agency queues.
        var injected: [InjectedFault] = []
        var agencySummaries: [WorkloadSummary.AgencyCounts] = []
        var owned = Array(repeating: 0, count: infos.count)
        for app in simulation.apps { owned[Int(app.agency)] += 1 }
        var written = 0
        let totalLines = max(1, totalValid + simulation.bureau.count)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 21)
        for (index, info) in infos.enumerated() {
            let dir = paths.queue(info.agency.code)
            do { try fm.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw WorkloadError.io(path: dir.path, message: error.localizedDescription)
            }
            buffer.removeAll(keepingCapacity: true)
            JSONBytes.append("{\"format\": \"cardsync.queue.v1\",\n \"agency\": ", to: &buffer)
            Renderer.appendAgency(info.agency, to: &buffer)
            JSONBytes.append("}\n", to: &buffer)
            try writeFile(dir.appendingPathComponent(WorkloadFiles.agencyFile), buffer)

            var out = try OutputFile(dir.appendingPathComponent(WorkloadFiles.outboxFile))
            buffer.removeAll(keepingCapacity: true)
            var seq = 0, line = 0, lastValidSeq = 0
            var byType: [EventType: Int] = [:]
            var faults = plan[index][...]
            for (i, event) in simulation.outboxes[index].enumerated() {
                seq += 1; line += 1
                renderer.appendOutboxLine(seq: seq, event, to: &buffer)
                lastValidSeq = seq
                byType[event.type, default: 0] += 1
                while let fault = faults.first, fault.after == i {
                    faults.removeFirst()
                    let context = FaultContext(agency: info, time: event.time, previousApp: simulation.apps[Int(event.app)].id,
                                               lastValidSeq: lastValidSeq, seq: seq + 1)
                    let made = factory.line(fault.code, context)
                    if made.consumesSeq { seq += 1 }
                    line += 1
                    buffer.append(contentsOf: made.bytes)
                    buffer.append(0x0A)
                    injected.append(InjectedFault(agencyCode: info.agency.code, line: line, code: fault.code))
                }
                if buffer.count >= 1 << 20 { try out.write(&buffer) }
                written += 1
                if written % 50_000 == 0 { report(0.45 + 0.55 * Double(written) / Double(totalLines)) }
            }
            try out.write(&buffer)
            try out.close()
            agencySummaries.append(WorkloadSummary.AgencyCounts(
                agency: info.agency, outboxEvents: simulation.outboxes[index].count,
                faultyLines: plan[index].count, applications: owned[index], eventsByType: byType))
        }

        // 4. Bureau decisions and the agency list.
        var bureauFile = try OutputFile(paths.bureauDecisions)
        buffer.removeAll(keepingCapacity: true)
        var eventsByType: [EventType: Int] = [:]
        for event in simulation.bureau {
            renderer.appendBureauLine(event, to: &buffer)
            eventsByType[event.type, default: 0] += 1
            if buffer.count >= 1 << 20 { try bureauFile.write(&buffer) }
            written += 1
            if written % 50_000 == 0 { report(0.45 + 0.55 * Double(written) / Double(totalLines)) }
        }
        try bureauFile.write(&buffer)
        try bureauFile.close()

        buffer.removeAll(keepingCapacity: true)
        buffer.append(0x5B)
        for (i, info) in infos.enumerated() {
            JSONBytes.append(i == 0 ? "\n  " : ",\n  ", to: &buffer)
            Renderer.appendAgency(info.agency, to: &buffer)
        }
        JSONBytes.append("\n]\n", to: &buffer)
        try writeFile(paths.agencies, buffer)
        report(1)

        for summary in agencySummaries {
            for (type, n) in summary.eventsByType { eventsByType[type, default: 0] += n }
        }
        var faultsByCode: [QuarantineCode: Int] = [:]
        for fault in injected { faultsByCode[fault.code, default: 0] += 1 }
        return WorkloadSummary(
            spec: spec, paths: paths, agencies: agencySummaries, applications: simulation.apps.count,
            duplicatePairs: simulation.duplicatePairs, outboxEvents: totalValid,
            bureauDecisions: simulation.bureau.count, eventsByType: eventsByType,
            injectedFaults: injected, faultsByCode: faultsByCode)
    }

    private static func writeFile(_ url: URL, _ bytes: [UInt8]) throws {
        var file = try OutputFile(url)
        var copy = bytes
        try file.write(&copy)
        try file.close()
    }
}

/// A file written through the caller's buffer: `write` hands the bytes to the system and empties it.
struct OutputFile {
    let url: URL
    private let handle: FileHandle

    init(_ url: URL) throws {
        self.url = url
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw WorkloadError.io(path: url.path, message: "cannot create the file")
        }
        do { handle = try FileHandle(forWritingTo: url) } catch {
            throw WorkloadError.io(path: url.path, message: error.localizedDescription)
        }
    }

    mutating func write(_ buffer: inout [UInt8]) throws {
        guard !buffer.isEmpty else { return }
        do { try handle.write(contentsOf: buffer) } catch {
            throw WorkloadError.io(path: url.path, message: error.localizedDescription)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        do { try handle.close() } catch {
            throw WorkloadError.io(path: url.path, message: error.localizedDescription)
        }
    }
}
