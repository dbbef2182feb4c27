import CardCore

/// One generated event. Text is rendered only when the line is written, from the application
/// and `aux` (document mask, amendment index or reason index, by type).
struct Event {
    var time: Int64
    /// Creation order: breaks ties between equal times so that the order is total and stable.
    var ord: Int32
    var app: Int32
    var aux: Int32
    var type: EventType
    var id: UUIDBits

    static func before(_ a: Event, _ b: Event) -> Bool { a.time != b.time ? a.time < b.time : a.ord < b.ord }
}

enum AmendValue {
    case text(String)
    case documents(UInt8)
}

struct Amendment {
    var baseVersion = 0
    var changes: [(path: StaticString, value: AmendValue)]
}

struct Application {
    var id: UUIDBits
    var agency: Int32
    /// The household's district (index into `ChangshaData.districts`).
    var district: Int16
    var form: Form
    var card: Int32 = -1
    var dispatchAgency: Int32 = -1
    var collectedName = ""
    var collectedRelationship = Relationship.father
}

/// An agency as the simulation sees it.
struct AgencyInfo {
    var agency: Agency
    /// Index into `ChangshaData.districts`; `nil` for the online service.
    var district: Int?
    var isOnline: Bool { agency.channel == .online }
}

/// The values of an application as amended so far.
private struct Current {
    var district: Int
    var childSurname: String
    var childName: String
    var childSex: Sex
    var guardianName: String
    var guardianSex: Sex
    var relationship: Relationship
    var phone: String
    var registerNumber: String
    var address: String
    var documents: UInt8
}

/// Runs every application's lifecycle and collects the events per agency outbox and for the bureau.
struct Simulation {
    let agencies: [AgencyInfo]
    var rng: Xoshiro256
    var population = Population()
    var apps: [Application] = []
    var amendments: [Amendment] = []
    var outboxes: [[Event]]
    var bureau: [Event] = []
    var duplicatePairs = 0

    private var ord: Int32 = 0
    private var cards: Set<Int32> = []
    private let startDay: Int
    private let dayCount: Int
    private let endInstant: Int64
    private let agencyWeights: [Double]
    private let districtWeights: [Double]
    private let countersByDistrict: [[Int]]
    private let counters: [Int]
    /// Originals that may be submitted again elsewhere: app index, submitted at, still open until.
    private var duplicateCandidates: [(app: Int, submitted: Int64, openUntil: Int64)] = []

    init(spec: WorkloadSpec, agencies: [AgencyInfo]) {
        self.agencies = agencies
        rng = Xoshiro256(seed: spec.seed)
        outboxes = Array(repeating: [], count: agencies.count)
        startDay = spec.start.dayNumber
        dayCount = max(1, spec.end.dayNumber - spec.start.dayNumber)
        endInstant = ShanghaiTime.instant(day: spec.end.dayNumber, second: 0)
        // Relative size of districts (children registered there), roughly by population.
        districtWeights = cumulative([0.55, 0.7, 1.25, 0.85, 1.25, 0.85, 1.2, 1.3, 1.2])
        var counters: [Int] = []
        var byDistrict = Array(repeating: [Int](), count: ChangshaData.districts.count)
        for (i, a) in agencies.enumerated() {
            if let d = a.district { byDistrict[d].append(i); counters.append(i) }
        }
        self.counters = counters
        countersByDistrict = byDistrict
        // Counters vary in size; the online service takes about a fifth of all applications.
        var weightRNG = Xoshiro256(seed: spec.seed ^ 0x5EED_A6E1_C1E5)
        var weights = agencies.map { $0.isOnline ? 0.0 : 0.5 + weightRNG.unit() }
        let counterTotal = weights.reduce(0, +)
        for (i, a) in agencies.enumerated() where a.isOnline { weights[i] = counterTotal * 0.25 }
        agencyWeights = cumulative(weights)
    }

    // MARK: Running

    mutating func run(applications: Int, progress: (Double) -> Void) {
        let duplicates = agencies.count >= 2 ? applications / 100 : 0
        let originals = applications - duplicates
        let step = max(1, applications / 100)
        for i in 0..<originals {
            simulateOriginal()
            if i % step == 0 { progress(Double(i) / Double(max(1, applications))) }
        }
        var made = 0, attempts = 0
        while made < duplicates, attempts < duplicates * 20, !duplicateCandidates.isEmpty {
            attempts += 1
            if simulateDuplicate() { made += 1 }
        }
        // Whatever duplicates could not be placed become ordinary applications, so that the
        // number of application ids is always the one asked for.
        for _ in made..<duplicates { simulateOriginal() }
        duplicatePairs = made
        for i in outboxes.indices { outboxes[i].sort(by: Event.before) }
        bureau.sort(by: Event.before)
    }

    // MARK: Time

    private static func counterSecond(_ rng: inout Xoshiro256) -> Int {
        // 08:30-12:00 and 13:30-17:30.
        let u = rng.below(27_000)
        return u < 12_600 ? 30_600 + u : 48_600 + (u - 12_600)
    }

    private static func onlineSecond(_ rng: inout Xoshiro256) -> Int { 25_200 + rng.below(59_400) }   // 07:00-23:30

    private static func bureauSecond(_ rng: inout Xoshiro256) -> Int { 32_400 + rng.below(30_600) }   // 09:00-17:30

    private mutating func submissionTime(online: Bool) -> Int64 {
        while true {
            let day = startDay + rng.below(dayCount)
            let weekday = ShanghaiTime.weekday(day)
            let weight = online ? (weekday >= 5 ? 1.2 : 1.0) : (weekday == 5 ? 0.3 : weekday == 6 ? 0.12 : 1.0)
            guard rng.chance(weight / 1.2) else { continue }
            let second = online ? Simulation.onlineSecond(&rng) : Simulation.counterSecond(&rng)
            return ShanghaiTime.instant(day: day, second: second)
        }
    }

    /// A bureau working time `workingDays` working days after the day of `t`.
    private mutating func bureauTime(after t: Int64, workingDays: Int) -> Int64 {
        let day = ShanghaiTime.addingWorkingDays(workingDays, to: ShanghaiTime.day(of: t))
        return ShanghaiTime.instant(day: day, second: Simulation.bureauSecond(&rng))
    }

    /// A time `days` calendar days after the day of `t`, at a second drawn by `second`, and after `t`.
    private mutating func later(_ t: Int64, days: ClosedRange<Int>, second: (inout Xoshiro256) -> Int) -> Int64 {
        let day = ShanghaiTime.day(of: t) + rng.int(in: days)
        let x = ShanghaiTime.instant(day: day, second: second(&rng))
        return x > t ? x : t + 60 + Int64(rng.below(3600))
    }

    private mutating func between(_ lo: Int64, _ hi: Int64) -> Int64? {
        hi > lo ? lo + Int64(rng.below(Int(hi - lo))) : nil
    }

    /// A time strictly between `lo` and `hi` when the agency is open (the online service: 07:00-23:30),
    /// or any time between them when no opening hour fits; `nil` when `hi <= lo`.
    private mutating func atAgency(online: Bool, _ lo: Int64, _ hi: Int64) -> Int64? {
        guard hi > lo else { return nil }
        let first = ShanghaiTime.day(of: lo), last = ShanghaiTime.day(of: hi)
        for _ in 0..<8 {
            let day = first + rng.below(last - first + 1)
            let second = online ? Simulation.onlineSecond(&rng) : Simulation.counterSecond(&rng)
            let t = ShanghaiTime.instant(day: day, second: second)
            if t > lo, t < hi { return t }
        }
        return between(lo, hi)
    }

    // MARK: Lifecycles

    private struct Step {
        var time: Int64
        var type: EventType
        var aux: Int32
        /// Recording agency; -1 for the bureau.
        var agency: Int32
    }

    private mutating func newCardNumber() -> Int32 {
        while true {
            let n = Int32(rng.below(100_000_000))
            if cards.insert(n).inserted { return n }
        }
    }

    private mutating func simulateOriginal() {
        let a = rng.index(cumulative: agencyWeights)
        let info = agencies[a]
        let district: Int
        if let d = info.district, rng.chance(0.85) { district = d } else { district = rng.index(cumulative: districtWeights) }
        let t0 = submissionTime(online: info.isOnline)
        let form = population.form(channel: info.agency.channel, district: district,
                                   submittedDay: ShanghaiTime.day(of: t0), rng: &rng)
        let appIndex = apps.count
        apps.append(Application(id: rng.uuid(), agency: Int32(a), district: Int16(district), form: form))
        let surnameLength = form.childName.hasPrefix("欧阳") ? 2 : 1
        var current = Current(
            district: district, childSurname: String(form.childName.prefix(surnameLength)), childName: form.childName,
            childSex: form.childSex, guardianName: form.guardianName,
            guardianSex: IdentityNumber(form.guardianID)?.sex ?? .male, relationship: form.relationship,
            phone: form.phone, registerNumber: form.registerNumber, address: form.address,
            documents: form.documents)
        let agency = Int32(a)
        var steps = [Step(time: t0, type: .submitted, aux: 0, agency: agency)]
        var lastAtAgency = t0
        let decision = bureauTime(after: t0, workingDays: 1 + rng.below(5))

        if rng.chance(0.3) {
            let verified = info.isOnline ? t0 + Int64(3600 + rng.below(30 * 3600)) : t0 + Int64(120 + rng.below(1800))
            if verified < decision - 600 {
                steps.append(Step(time: verified, type: .documentsVerified, aux: Int32(form.documents), agency: agency))
                lastAtAgency = verified
            }
        }
        let fate = rng.unit()
        var openUntil = Int64.max
        defer {
            finish(app: appIndex, steps: steps)
            if fate >= 0.07, openUntil > t0 {
                duplicateCandidates.append((appIndex, t0, min(openUntil, endInstant)))
            }
        }
        if fate < 0.02, let withdrawn = atAgency(online: info.isOnline, lastAtAgency + 3600, decision - 60) {
            steps.append(Step(time: withdrawn, type: .withdrawn,
                              aux: Int32(rng.below(ChangshaData.withdrawalReasons.count)), agency: agency))
            return
        }
        if rng.chance(0.035), let amended = atAgency(online: info.isOnline, lastAtAgency + 600, decision - 600) {
            steps.append(Step(time: amended, type: .amended, aux: amendment(randomKind(current), &current), agency: agency))
        }
        var approvedAt = decision
        if fate < 0.07 {
            steps.append(Step(time: decision, type: .rejected,
                              aux: Int32(rng.below(ChangshaData.rejectionReasons.count)), agency: -1))
            return
        } else if fate < 0.12 {
            var reasons = ChangshaData.returnReasons.indices.filter { ChangshaData.returnReasons[$0].fix != .photo }
            if current.documents & Documents.photo == 0 { reasons = [1, 1] + reasons }
            let reason = rng.pick(reasons)
            steps.append(Step(time: decision, type: .returned, aux: Int32(reason), agency: -1))
            let follow = rng.unit()
            if follow < 0.85 {
                let amended = atAgency(online: info.isOnline, decision + 3600, decision + 10 * 86_400)!
                let kind = kindFixing(ChangshaData.returnReasons[reason].fix)
                steps.append(Step(time: amended, type: .amended, aux: amendment(kind, &current), agency: agency))
                approvedAt = bureauTime(after: amended, workingDays: 1 + rng.below(5))
                if rng.chance(0.05) {
                    steps.append(Step(time: approvedAt, type: .rejected,
                                      aux: Int32(rng.below(ChangshaData.rejectionReasons.count)), agency: -1))
                    openUntil = approvedAt
                    return
                }
            } else if follow < 0.95 {
                let withdrawn = later(decision, days: 5...20, second: info.isOnline ? Simulation.onlineSecond : Simulation.counterSecond)
                steps.append(Step(time: withdrawn, type: .withdrawn,
                                  aux: Int32(rng.below(ChangshaData.withdrawalReasons.count)), agency: agency))
                openUntil = withdrawn
                return
            } else {
                return   // stays returned
            }
        }
        steps.append(Step(time: approvedAt, type: .approved, aux: 0, agency: -1))
        let produced = later(approvedAt, days: 3...10, second: { 28_800 + $0.below(43_200) })
        let dispatched = later(produced, days: 1...3, second: { 32_400 + $0.below(28_800) })
        let issued = later(dispatched, days: 1...20, second: Simulation.counterSecond)
        openUntil = issued
        let target: Int
        if info.district != nil {
            target = a
        } else if !countersByDistrict[district].isEmpty {
            target = rng.pick(countersByDistrict[district])
        } else {
            target = counters.isEmpty ? a : rng.pick(counters)
        }
        if rng.chance(0.02), let amended = atAgency(online: info.isOnline, approvedAt + 600, issued - 600) {
            steps.append(Step(time: amended, type: .amended, aux: amendment(.phone, &current), agency: agency))
        }
        apps[appIndex].card = newCardNumber()
        apps[appIndex].dispatchAgency = Int32(target)
        steps.append(Step(time: produced, type: .cardProduced, aux: 0, agency: -1))
        steps.append(Step(time: dispatched, type: .cardDispatched, aux: 0, agency: -1))
        steps.append(Step(time: issued, type: .cardIssued, aux: 0, agency: Int32(target)))
        if rng.chance(0.85) {
            apps[appIndex].collectedName = current.guardianName
            apps[appIndex].collectedRelationship = current.relationship
        } else if current.relationship == .mother {
            apps[appIndex].collectedName = current.childSurname + Population.adultGivenName(.male, &rng)
            apps[appIndex].collectedRelationship = .father
        } else {
            apps[appIndex].collectedName = Population.surname(&rng) + Population.adultGivenName(.female, &rng)
            apps[appIndex].collectedRelationship = current.relationship == .father ? .mother : .other
        }
    }

    /// The same child submitted again at another agency a few hours or days later, while the
    /// first application is still open. Returns false when the drawn candidate does not fit.
    private mutating func simulateDuplicate() -> Bool {
        let pick = rng.below(duplicateCandidates.count)
        let candidate = duplicateCandidates[pick]
        let original = apps[candidate.app]
        var b = rng.below(agencies.count - 1)
        if b >= Int(original.agency) { b += 1 }
        let info = agencies[b]
        let day = ShanghaiTime.day(of: candidate.submitted) + rng.below(4)
        var t = ShanghaiTime.instant(day: day, second: info.isOnline ? Simulation.onlineSecond(&rng) : Simulation.counterSecond(&rng))
        if t < candidate.submitted + 7200 { t += 86_400 }
        guard t < candidate.openUntil, t < endInstant else { return false }
        duplicateCandidates.swapAt(pick, duplicateCandidates.count - 1)
        duplicateCandidates.removeLast()
        var form = original.form
        form.channel = info.agency.channel
        form.documents = Documents.all
        if rng.chance(0.4), form.relationship == .father || form.relationship == .mother {
            // The other parent applies.
            let toMother = form.relationship == .father
            let sex: Sex = toMother ? .female : .male
            let surname = toMother ? Population.surname(&rng)
                : String(form.childName.prefix(form.childName.hasPrefix("欧阳") ? 2 : 1))
            let birth = CivilDate(dayNumber: form.childBirth.dayNumber - rng.int(in: 22 * 365...40 * 365))
            let region = population.guardianRegion(household: Int(original.district), rng: &rng)
            let id = population.identity(region: region,
                                         birth: birth, sex: sex, rng: &rng)
            form.relationship = toMother ? .mother : .father
            form.guardianName = surname + Population.adultGivenName(sex, &rng)
            form.guardianID = id.text
            form.phone = Population.phone(&rng)
        }
        let appIndex = apps.count
        apps.append(Application(id: rng.uuid(), agency: Int32(b), district: original.district, form: form))
        finish(app: appIndex, steps: [Step(time: t, type: .submitted, aux: 0, agency: Int32(b))])
        return true
    }

    /// Orders an application's steps, drops those at or after the end, sets amendments'
    /// `base_version` (the version at that moment: one per earlier event), and files the events.
    private mutating func finish(app: Int, steps unordered: [Step]) {
        let steps = unordered.sorted { $0.time < $1.time }
        for (index, step) in steps.enumerated() {
            guard step.time < endInstant else { break }
            if step.type == .amended { amendments[Int(step.aux)].baseVersion = index }
            ord += 1
            let event = Event(time: step.time, ord: ord, app: Int32(app), aux: step.aux, type: step.type, id: rng.uuid())
            if step.agency < 0 { bureau.append(event) } else { outboxes[Int(step.agency)].append(event) }
        }
    }

    // MARK: Amendments

    private enum ChangeKind { case phone, address, addressAndRegister, childName, guardianName, registerNumber, photo }

    private mutating func randomKind(_ current: Current) -> ChangeKind {
        let u = rng.unit()
        if u < 0.35 { return .phone }
        if u < 0.55 { return .address }
        if u < 0.65 { return .addressAndRegister }
        if u < 0.75 { return .childName }
        if u < 0.85 { return .guardianName }
        if u < 0.9 { return .registerNumber }
        return current.documents & Documents.photo == 0 ? .photo : .phone
    }

    private func kindFixing(_ fix: ChangshaData.Fix) -> ChangeKind {
        switch fix {
        case .phone: return .phone
        case .photo: return .photo
        case .registerNumber: return .registerNumber
        case .childName: return .childName
        case .address: return .address
        }
    }

    /// Records an amendment of the given kind, updates the current values, returns its index.
    private mutating func amendment(_ kind: ChangeKind, _ current: inout Current) -> Int32 {
        var changes: [(path: StaticString, value: AmendValue)] = []
        let district = current.district
        switch kind {
        case .phone:
            var phone = Population.mobile(&rng)
            while phone == current.phone { phone = Population.mobile(&rng) }
            current.phone = phone
            changes.append(("guardian.phone", .text(phone)))
        case .address:
            current.address = Population.address(district: district, &rng)
            changes.append(("household.address", .text(current.address)))
        case .addressAndRegister:
            current.address = Population.address(district: district, &rng)
            current.registerNumber = Population.registerNumber(district: district, &rng)
            changes.append(("household.register_number", .text(current.registerNumber)))
            changes.append(("household.address", .text(current.address)))
        case .childName:
            var name = current.childSurname + Population.childGivenName(current.childSex, &rng)
            while name == current.childName { name = current.childSurname + Population.childGivenName(current.childSex, &rng) }
            current.childName = name
            changes.append(("child.name", .text(name)))
        case .guardianName:
            let surname = String(current.guardianName.prefix(current.guardianName.hasPrefix("欧阳") ? 2 : 1))
            var name = surname + Population.adultGivenName(current.guardianSex, &rng)
            while name == current.guardianName { name = surname + Population.adultGivenName(current.guardianSex, &rng) }
            current.guardianName = name
            changes.append(("guardian.name", .text(name)))
        case .registerNumber:
            current.registerNumber = Population.registerNumber(district: district, &rng)
            changes.append(("household.register_number", .text(current.registerNumber)))
        case .photo:
            current.documents |= Documents.photo
            changes.append(("documents", .documents(current.documents)))
        }
        amendments.append(Amendment(changes: changes))
        return Int32(amendments.count - 1)
    }
}
