import CardCore
import Foundation
import Testing
import CardSync
@testable import Workload

/// A generated workload read back: every valid outbox line and bureau decision, parsed.
private struct Loaded {
    struct Line {
        var agency: String
        var object: [String: Any]
        var type: EventType
        var applicationID: String
        var at: Timestamp
        var data: [String: Any]
    }

    var agencies: [[String: Any]] = []
    var outbox: [Line] = []
    var bureau: [Line] = []
    var rawOutboxes: [(code: String, lines: [Data])] = []

    init(_ root: URL, summary: WorkloadSummary) throws {
        let list = try Data(contentsOf: root.appendingPathComponent("agencies.json"))
        agencies = try #require(try JSONSerialization.jsonObject(with: list) as? [[String: Any]])
        for agency in agencies {
            let code = try #require(agency["code"] as? String)
            let dir = root.appendingPathComponent(code)
            let data = try Data(contentsOf: dir.appendingPathComponent("outbox.jsonl"))
            let split = lines(data)
            #expect(split.trailing == nil, "\(code): the outbox ends with a newline")
            rawOutboxes.append((code, split.complete))
            let faultLines = Set(summary.injectedFaults.filter { $0.agencyCode == code }.map(\.line))
            for (i, raw) in split.complete.enumerated() where !faultLines.contains(i + 1) {
                let object = try #require(jsonObject(raw), "\(code) line \(i + 1) is JSON")
                outbox.append(try Loaded.line(code, object))
            }
        }
        let decisions = lines(try Data(contentsOf: root.appendingPathComponent("bureau-decisions.jsonl")))
        #expect(decisions.trailing == nil)
        for raw in decisions.complete {
            bureau.append(try Loaded.line("", try #require(jsonObject(raw))))
        }
    }

    static func line(_ agency: String, _ object: [String: Any]) throws -> Line {
        Line(agency: agency, object: object,
             type: try #require(EventType(rawValue: object["type"] as? String ?? "")),
             applicationID: try #require(object["application_id"] as? String),
             at: try #require(Timestamp(rfc3339: object["occurred_at"] as? String ?? "")),
             data: try #require(object["data"] as? [String: Any]))
    }
}

private func generate(_ spec: WorkloadSpec, name: String = #function) throws -> (URL, WorkloadSummary) {
    let dir = temporaryDirectory(name)
    let summary = try WorkloadGenerator.generate(spec: spec, into: dir)
    return (dir, summary)
}

private let smallSpec = WorkloadSpec(agencies: 12, applications: 3000, months: 5, seed: 7, faultRate: 0, end: testEnd)

@Suite("cardsync generate")
struct WorkloadTests {
    @Test("the same seed gives the same bytes")
    func sameSeedSameBytes() throws {
        let spec = WorkloadSpec(agencies: 6, applications: 1200, months: 4, seed: 42, faultRate: 0.02, end: testEnd)
        let (a, _) = try generate(spec)
        let (b, _) = try generate(spec)
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let left = try directoryContents(a), right = try directoryContents(b)
        #expect(left.map(\.path) == right.map(\.path))
        #expect(left.map(\.data) == right.map(\.data))
        #expect(try fingerprint(a) == fingerprint(b))
    }

    @Test("a different seed gives different bytes")
    func differentSeed() throws {
        var spec = WorkloadSpec(agencies: 6, applications: 1200, months: 4, seed: 42, end: testEnd)
        let (a, _) = try generate(spec)
        spec.seed = 43
        let (b, _) = try generate(spec)
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        #expect(try fingerprint(a) != fingerprint(b))
    }

    @Test("agency directories, agency.json and agencies.json; the last agency is the online service")
    func agencies() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        #expect(loaded.agencies.count == 12)
        #expect(summary.agencies.count == 12)
        let last = try #require(loaded.agencies.last)
        #expect(last["code"] as? String == "CS-ONLINE")
        #expect(last["channel"] as? String == "online")
        #expect(loaded.agencies.dropLast().allSatisfy { $0["channel"] as? String == "counter" })
        #expect(loaded.agencies.first?["code"] as? String == "CS-FR-001")
        #expect(loaded.agencies.first?["name"] as? String == "芙蓉区社保卡服务网点")
        #expect(loaded.agencies.first?["district"] as? String == "芙蓉区")
        #expect(Set(loaded.agencies.compactMap { $0["code"] as? String }).count == 12)
        for agency in loaded.agencies {
            let code = try #require(agency["code"] as? String)
            #expect(AgencyCode.isValid(code))
            let data = try Data(contentsOf: dir.appendingPathComponent(code).appendingPathComponent("agency.json"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(object["format"] as? String == "cardsync.queue.v1")
            let inner = try #require(object["agency"] as? [String: Any])
            #expect(Set(inner.keys) == ["code", "name", "district", "channel"])
            #expect(inner["code"] as? String == code)
            #expect(inner["name"] as? String == agency["name"] as? String)
        }
        #expect(WorkloadGenerator.agencies(count: 12).map(\.code) == loaded.agencies.compactMap { $0["code"] as? String })
    }

    @Test("the queues-folder layout: DIR/queues holds the queues and nothing else, the same bytes as the flat layout")
    func queuesFolderLayout() throws {
        let spec = WorkloadSpec(agencies: 3, applications: 200, months: 2, seed: 9, faultRate: 0.02, end: testEnd)
        let (flat, flatSummary) = try generate(spec)
        let folder = temporaryDirectory(#function + "-folder")
        defer { try? FileManager.default.removeItem(at: flat); try? FileManager.default.removeItem(at: folder) }
        let summary = try WorkloadGenerator.generate(spec: spec, into: folder, layout: .queuesFolder)
        #expect(summary.paths.queuesDirectory == folder.appendingPathComponent("queues", isDirectory: true))
        #expect(flatSummary.paths.queuesDirectory == flat)
        let top = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(top == ["agencies.json", "bureau-decisions.jsonl", "queues"])
        let queues = try FileManager.default.contentsOfDirectory(atPath: summary.paths.queuesDirectory.path).sorted()
        #expect(queues == summary.agencies.map(\.agency.code).sorted())
        for code in queues {
            for file in ["agency.json", "outbox.jsonl"] {
                #expect(try Data(contentsOf: summary.paths.queue(code).appendingPathComponent(file))
                    == Data(contentsOf: flat.appendingPathComponent(code).appendingPathComponent(file)), "\(code)/\(file)")
            }
        }
        #expect(try Data(contentsOf: summary.paths.bureauDecisions) == Data(contentsOf: flat.appendingPathComponent("bureau-decisions.jsonl")))
        #expect(try Data(contentsOf: summary.paths.agencies) == Data(contentsOf: flat.appendingPathComponent("agencies.json")))
    }

    @Test("every outbox line has the spec's fields and types, seq strictly increasing, in occurred_at order")
    func outboxShape() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        #expect(loaded.outbox.count == summary.outboxEvents)
        var eventIDs: Set<String> = []
        for (code, raw) in loaded.rawOutboxes {
            var lastSeq = 0
            var lastAt: Timestamp?
            for line in raw {
                let object = try #require(jsonObject(line))
                #expect(Set(object.keys) == ["seq", "event_id", "application_id", "type", "occurred_at", "data"])
                let seq = try #require(jsonInt(object["seq"]))
                #expect(seq == lastSeq + 1, "\(code): seq from 1 without gaps when there are no faults")
                lastSeq = seq
                let eventID = try #require(object["event_id"] as? String)
                #expect(UUID(uuidString: eventID) != nil && eventID == eventID.lowercased())
                #expect(eventIDs.insert(eventID).inserted)
                #expect(UUID(uuidString: object["application_id"] as? String ?? "") != nil)
                let type = try #require(EventType(rawValue: object["type"] as? String ?? ""))
                #expect(type.origin == .agency)
                let text = try #require(object["occurred_at"] as? String)
                let at = try #require(Timestamp(rfc3339: text))
                #expect(text.hasSuffix("+08:00"))
                if let lastAt { #expect(lastAt <= at, "\(code): ordered by occurred_at") }
                lastAt = at
                #expect(object["data"] is [String: Any])
            }
        }
        for line in loaded.bureau {
            #expect(Set(line.object.keys) == ["event_id", "application_id", "type", "occurred_at", "data"])
            #expect(line.type.origin == .bureau)
            #expect(eventIDs.insert(line.object["event_id"] as? String ?? "").inserted)
        }
        #expect(zip(loaded.bureau, loaded.bureau.dropFirst()).allSatisfy { $0.at <= $1.at }, "bureau in time order")
    }

    @Test("no valid line breaks any rule of the validation table")
    func validLinesPassEveryRule() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        for (code, raw) in loaded.rawOutboxes {
            var validator = ReferenceValidator(now: smallSpec.endInstant)
            for (i, line) in raw.enumerated() {
                let found = validator.violations(line)
                #expect(found.isEmpty, "\(code) line \(i + 1): \(found)")
            }
        }
    }

    @Test("identity numbers are valid and agree with birth date and sex; children minors, guardians adults")
    func people() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        let districtCodes = Set(ChangshaData.districts.map(\.code))
        var submitted = 0
        var ages: [Int] = []
        for line in loaded.outbox where line.type == .submitted {
            submitted += 1
            let child = try #require(line.data["child"] as? [String: Any])
            let guardian = try #require(line.data["guardian"] as? [String: Any])
            let household = try #require(line.data["household"] as? [String: Any])
            let childID = try #require(IdentityNumber(child["id_number"] as? String ?? ""))
            let guardianID = try #require(IdentityNumber(guardian["id_number"] as? String ?? ""))
            #expect(child["birth_date"] as? String == childID.birthDate.description)
            #expect(child["sex"] as? String == childID.sex.rawValue)
            #expect(districtCodes.contains(childID.regionCode), "children are registered in Changsha")
            let (y, m, d) = line.at.civilDate(offsetSeconds: 8 * 3600)
            let day = CivilDate(year: y, month: m, day: d)!
            ages.append(childID.birthDate.age(on: day))
            #expect(childID.birthDate <= day)
            #expect(childID.birthDate.age(on: day) < 18)
            #expect(guardianID.birthDate.age(on: day) >= 18)
            #expect(PhoneNumber.isValid(guardian["phone"] as? String ?? ""))
            let relationship = guardian["relationship"] as? String ?? ""
            if relationship == "father" { #expect(guardianID.sex == .male) }
            if relationship == "mother" { #expect(guardianID.sex == .female) }
            let register = household["register_number"] as? String ?? ""
            #expect(register.count == 12 && register.hasPrefix(childID.regionCode) == (register.prefix(6) == childID.regionCode.prefix(6)))
            #expect((household["address"] as? String ?? "").hasPrefix("长沙市"))
            let channel = line.agency == "CS-ONLINE" ? "online" : "counter"
            #expect(line.data["channel"] as? String == channel)
        }
        #expect(submitted == summary.applications)
        // Newborns dominate.
        #expect(ages.filter { $0 == 0 }.count * 2 > ages.count)
    }

    @Test("every lifecycle is consistent: transitions allowed, base_version right, cards issued where dispatched")
    func lifecycles() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        let all = (loaded.outbox + loaded.bureau).sorted { $0.at < $1.at }
        struct State {
            var status: ApplicationStatus
            var version: Int
            var owner: String
            var card: String?
            var dispatchedTo: String?
            var child: String
        }
        var states: [String: State] = [:]
        var openByChild: [String: String] = [:]
        var duplicates = 0
        var issuedByAgency: [String: Int] = [:]
        for e in all {
            if e.type == .submitted {
                #expect(states[e.applicationID] == nil)
                let child = ((e.data["child"] as? [String: Any])?["id_number"] as? String) ?? ""
                if let other = openByChild[child], let s = states[other], s.status.isOpen {
                    duplicates += 1
                    #expect(s.owner != e.agency, "a duplicate is submitted at a second agency")
                    states[e.applicationID] = State(status: .onHold, version: 1, owner: e.agency, child: child)
                } else {
                    openByChild[child] = e.applicationID
                    states[e.applicationID] = State(status: .submitted, version: 1, owner: e.agency, child: child)
                }
                continue
            }
            var s = try #require(states[e.applicationID], "\(e.type) after its submitted")
            #expect(s.status != .onHold, "duplicates get no further events")
            #expect(s.status.isOpen, "\(e.type) after a terminal status")
            switch e.type {
            case .documentsVerified:
                #expect(e.agency == s.owner)
            case .amended:
                #expect(e.agency == s.owner)
                #expect(jsonInt(e.data["base_version"]) == s.version)
                let changes = try #require(e.data["changes"] as? [String: Any])
                if [.approved, .produced, .dispatched].contains(s.status) {
                    #expect(Array(changes.keys) == ["guardian.phone"])
                } else {
                    #expect(s.status == .submitted || s.status == .returned)
                }
                if s.status == .returned { s.status = .submitted }
            case .withdrawn:
                #expect(e.agency == s.owner)
                s.status = .withdrawn
            case .approved, .rejected, .returned:
                #expect(s.status == .submitted)
                s.status = e.type == .approved ? .approved : e.type == .rejected ? .rejected : .returned
            case .cardProduced:
                #expect(s.status == .approved)
                s.card = e.data["card_number"] as? String
                #expect(s.card?.count == 9 && s.card?.hasPrefix("A") == true)
                s.status = .produced
            case .cardDispatched:
                #expect(s.status == .produced)
                s.dispatchedTo = e.data["agency_code"] as? String
                if s.owner != "CS-ONLINE" { #expect(s.dispatchedTo == s.owner) }
                #expect(s.dispatchedTo != "CS-ONLINE")
                s.status = .dispatched
            case .cardIssued:
                #expect(s.status == .dispatched)
                #expect(e.data["card_number"] as? String == s.card)
                #expect(e.agency == s.dispatchedTo, "issued where the card was dispatched")
                issuedByAgency[e.agency, default: 0] += 1
                s.status = .issued
            default:
                Issue.record("unexpected type \(e.type)")
            }
            s.version += 1
            states[e.applicationID] = s
        }
        #expect(duplicates == summary.duplicatePairs)
        #expect(summary.duplicatePairs >= 20)
        let cards = loaded.bureau.filter { $0.type == .cardProduced }.compactMap { $0.data["card_number"] as? String }
        #expect(Set(cards).count == cards.count, "card numbers are unique")
        // Online applications' cards are handed over at counters.
        #expect(all.contains { $0.type == .cardIssued && states[$0.applicationID]?.owner == "CS-ONLINE" })
        // Every kind of event occurs.
        for type in EventType.agencyTypes + EventType.bureauTypes {
            #expect((summary.eventsByType[type] ?? 0) > 0, "\(type) occurs")
        }
        #expect(issuedByAgency["CS-ONLINE"] == nil)
    }

    @Test("no event occurs at or after the end of the period, and the period is used")
    func nothingAfterEnd() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        let end = smallSpec.endInstant
        let start = Timestamp(microseconds: (Int64(smallSpec.start.dayNumber) * 86_400 - 8 * 3600) * 1_000_000)
        for line in loaded.outbox + loaded.bureau {
            #expect(line.at < end)
            #expect(line.at >= start)
        }
        let submitted = loaded.outbox.filter { $0.type == .submitted }.map(\.at)
        #expect(submitted.min()! < Timestamp(microseconds: start.microseconds + 7 * 86_400_000_000))
        #expect(submitted.max()! > Timestamp(microseconds: end.microseconds - 7 * 86_400_000_000))
    }

    @Test("the summary counts what the files hold")
    func summaryCounts() throws {
        let (dir, summary) = try generate(smallSpec)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try Loaded(dir, summary: summary)
        #expect(summary.applications == 3000)
        #expect(summary.bureauDecisions == loaded.bureau.count)
        #expect(summary.totalEvents == loaded.outbox.count + loaded.bureau.count)
        for counts in summary.agencies {
            let lines = loaded.outbox.filter { $0.agency == counts.agency.code }
            #expect(counts.outboxEvents == lines.count)
            #expect(counts.applications == lines.filter { $0.type == .submitted }.count)
            #expect(counts.eventsByType.values.reduce(0, +) == lines.count)
        }
        #expect(summary.injectedFaults.isEmpty && summary.faultsByCode.isEmpty)
    }

    @Test("--faults injects lines of every quarantine code, each breaking exactly its own rule")
    func faults() throws {
        let spec = WorkloadSpec(agencies: 8, applications: 3000, months: 4, seed: 99, faultRate: 0.02, end: testEnd)
        let (dir, summary) = try generate(spec)
        defer { try? FileManager.default.removeItem(at: dir) }
        for code in QuarantineCode.allCases {
            #expect((summary.faultsByCode[code] ?? 0) > 0, "\(code) injected")
        }
        #expect(summary.faultsByCode[.lineTooLong] == 1)
        let expected = Int((0.02 * Double(summary.outboxEvents)).rounded())
        #expect(summary.injectedFaults.count == max(expected, QuarantineCode.allCases.count))
        let loaded = try Loaded(dir, summary: summary)
        #expect(loaded.outbox.count == summary.outboxEvents)
        for (code, raw) in loaded.rawOutboxes {
            let intended = Dictionary(uniqueKeysWithValues: summary.injectedFaults.filter { $0.agencyCode == code }.map { ($0.line, $0.code) })
            var validator = ReferenceValidator(now: spec.endInstant)
            for (i, line) in raw.enumerated() {
                let found = validator.violations(line)
                if let fault = intended[i + 1] {
                    #expect(found == [fault], "\(code) line \(i + 1) should break only \(fault.rawValue), breaks \(found)")
                } else {
                    #expect(found.isEmpty, "\(code) line \(i + 1) is valid, breaks \(found)")
                }
            }
        }
    }

    @Test("the same seed gives the same valid events with and without faults")
    func faultsDoNotChangeValidEvents() throws {
        var spec = WorkloadSpec(agencies: 5, applications: 800, months: 3, seed: 5, faultRate: 0, end: testEnd)
        let (a, clean) = try generate(spec)
        spec.faultRate = 0.05
        let (b, faulty) = try generate(spec)
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let x = try Loaded(a, summary: clean), y = try Loaded(b, summary: faulty)
        #expect(x.outbox.map { $0.object["event_id"] as? String } == y.outbox.map { $0.object["event_id"] as? String })
        #expect(try Data(contentsOf: a.appendingPathComponent("bureau-decisions.jsonl"))
            == Data(contentsOf: b.appendingPathComponent("bureau-decisions.jsonl")))
    }

    @Test("a spec that cannot be generated, or a directory that is not empty, is refused")
    func refusals() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: WorkloadError.self) {
            try WorkloadGenerator.generate(spec: WorkloadSpec(agencies: 0, applications: 10, end: testEnd), into: dir)
        }
        #expect(throws: WorkloadError.self) {
            try WorkloadGenerator.generate(spec: WorkloadSpec(agencies: 2, applications: 10, faultRate: 2, end: testEnd), into: dir)
        }
        try WorkloadGenerator.generate(spec: WorkloadSpec(agencies: 2, applications: 10, end: testEnd), into: dir)
        #expect(throws: WorkloadError.self) {
            try WorkloadGenerator.generate(spec: WorkloadSpec(agencies: 2, applications: 10, end: testEnd), into: dir)
        }
    }

    @Test("one agency, no applications: still a well-formed workload")
    func tiny() throws {
        let (dir, summary) = try generate(WorkloadSpec(agencies: 1, applications: 0, months: 1, seed: 1, faultRate: 0.5, end: testEnd))
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(summary.agencies.map(\.agency.code) == ["CS-FR-001"])
        #expect(summary.totalEvents == 0 && summary.injectedFaults.isEmpty)
        #expect(try Data(contentsOf: dir.appendingPathComponent("CS-FR-001/outbox.jsonl")).isEmpty)
    }

    @Test("the period is the given number of months before the end")
    func period() {
        let spec = WorkloadSpec(agencies: 3, applications: 1, months: 3, end: CivilDate(year: 2026, month: 5, day: 31)!)
        #expect(spec.start == CivilDate(year: 2026, month: 2, day: 28))
        #expect(spec.endInstant.rfc3339 == "2026-05-31T00:00:00+08:00")
        let january = WorkloadSpec(agencies: 3, applications: 1, months: 13, end: CivilDate(year: 2026, month: 1, day: 1)!)
        #expect(january.start == CivilDate(year: 2024, month: 12, day: 1))
    }
}

@Suite("cardsync generate against the sync validator")
struct WorkloadValidatorTests {
    @Test("CardSync's EventLineValidator accepts every valid line and gives each injected fault its code")
    func syncValidatorAgrees() throws {
        let spec = WorkloadSpec(agencies: 8, applications: 3000, months: 4, seed: 2024, faultRate: 0.03, end: testEnd)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try WorkloadGenerator.generate(spec: spec, into: dir)
        let validator = EventLineValidator(mode: .outbox, now: spec.endInstant)
        var seen: [QuarantineCode: Int] = [:]
        for counts in summary.agencies {
            let code = counts.agency.code
            let intended = Dictionary(uniqueKeysWithValues: summary.injectedFaults.filter { $0.agencyCode == code }.map { ($0.line, $0.code) })
            let data = try Data(contentsOf: dir.appendingPathComponent(code).appendingPathComponent("outbox.jsonl"))
            var lastSeq: Int64?
            for (i, line) in lines(data).complete.enumerated() {
                let verdict = validator.check([UInt8](line), lineNumber: i + 1, lastSeq: lastSeq)
                if let seq = verdict.seq { lastSeq = max(lastSeq ?? seq, seq) }
                if let fault = intended[i + 1] {
                    #expect(verdict.reason?.code == fault, "\(code) line \(i + 1): \(fault.rawValue) expected, got \(String(describing: verdict.reason))")
                    seen[fault, default: 0] += 1
                } else {
                    #expect(verdict.event != nil, "\(code) line \(i + 1) valid, got \(String(describing: verdict.reason))")
                }
            }
        }
        #expect(seen == summary.faultsByCode)
        let bureauValidator = EventLineValidator(mode: .bureauImport, now: spec.endInstant)
        let decisions = try Data(contentsOf: dir.appendingPathComponent("bureau-decisions.jsonl"))
        for (i, line) in lines(decisions).complete.enumerated() {
            let verdict = bureauValidator.check([UInt8](line), lineNumber: i + 1, lastSeq: nil)
            #expect(verdict.event != nil, "bureau line \(i + 1): \(String(describing: verdict.reason))")
        }
    }
}
