import CardCore

/// The submitted form of an application, as generated (the values an agency first entered).
struct Form {
    var channel: AgencyChannel
    var childName: String
    var childID: String
    var childBirth: CivilDate
    var childSex: Sex
    var guardianName: String
    var guardianID: String
    var relationship: Relationship
    var phone: String
    var registerNumber: String
    var address: String
    var documents: UInt8
}

enum Relationship: String {
    case father, mother, grandparent, other
}

/// Draws people, identity numbers, phones and addresses. Identity numbers are unique across the
/// whole workload (a repeated number would be an unintended duplicate application).
struct Population {
    /// All region codes in use; `identity` keys use the index into this list.
    private let regions: [String] = ChangshaData.districts.map(\.code) + ChangshaData.otherRegionCodes
    private var used: Set<Int64> = []

    /// A unique identity number for a person born on `birth` in region `region` (index into
    /// `regions`). When the day's 500 sequence numbers of that sex are exhausted, the birth
    /// date moves one day earlier; the returned number carries the date actually used.
    mutating func identity(region: Int, birth: CivilDate, sex: Sex, rng: inout Xoshiro256) -> IdentityNumber {
        var day = birth.dayNumber
        while true {
            for _ in 0..<64 {
                let sequence = rng.below(500) * 2 + (sex == .male ? 1 : 0)
                let key = (Int64(day) + 1_000_000) * 100_000 + Int64(region) * 1000 + Int64(sequence)
                if used.insert(key).inserted {
                    return IdentityNumber.make(regionCode: regions[region], birthDate: CivilDate(dayNumber: day),
                                               sequence: sequence)
                }
            }
            day -= 1
        }
    }

    /// Region index of a Changsha district.
    func region(district: Int) -> Int { district }

    /// A guardian's birth region: mostly Changsha, otherwise elsewhere.
    func guardianRegion(household district: Int, rng: inout Xoshiro256) -> Int {
        let u = rng.unit()
        if u < 0.45 { return district }
        if u < 0.7 { return rng.below(ChangshaData.districts.count) }
        return ChangshaData.districts.count + rng.below(ChangshaData.otherRegionCodes.count)
    }

    static func surname(_ rng: inout Xoshiro256) -> String {
        ChangshaData.surnames[rng.index(cumulative: ChangshaData.surnameWeights)]
    }

    static func childGivenName(_ sex: Sex, _ rng: inout Xoshiro256) -> String {
        let pool = sex == .male ? ChangshaData.boyCharacters : ChangshaData.girlCharacters
        if rng.chance(0.2) { return rng.pick(pool) }
        var first = rng.pick(pool), second = rng.pick(pool)
        while second == first { second = rng.pick(pool); first = rng.pick(pool) }
        return first + second
    }

    static func adultGivenName(_ sex: Sex, _ rng: inout Xoshiro256) -> String {
        let pool = sex == .male ? ChangshaData.manCharacters : ChangshaData.womanCharacters
        if rng.chance(0.35) { return rng.pick(pool) }
        return rng.pick(pool) + rng.pick(pool)
    }

    static func mobile(_ rng: inout Xoshiro256) -> String {
        var s = rng.pick(ChangshaData.mobilePrefixes)
        for _ in 0..<8 { s.append(Character(Unicode.Scalar(UInt8(0x30 + rng.below(10))))) }
        return s
    }

    /// A phone as guardians give it: nearly always a mobile, sometimes a Changsha landline.
    static func phone(_ rng: inout Xoshiro256) -> String {
        if rng.chance(0.03) {
            var s = rng.chance(0.5) ? "0731-8" : "07318"
            for _ in 0..<7 { s.append(Character(Unicode.Scalar(UInt8(0x30 + rng.below(10))))) }
            return s
        }
        return mobile(&rng)
    }

    static func registerNumber(district: Int, _ rng: inout Xoshiro256) -> String {
        var s = ChangshaData.districts[district].code
        for _ in 0..<6 { s.append(Character(Unicode.Scalar(UInt8(0x30 + rng.below(10))))) }
        return s
    }

    static func address(district: Int, _ rng: inout Xoshiro256) -> String {
        let d = ChangshaData.districts[district]
        var s = "长沙市" + d.name + rng.pick(d.roads) + String(1 + rng.below(480)) + "号"
        if rng.chance(0.65) {
            s += String(1 + rng.below(30)) + "栋" + String(1 + rng.below(4)) + "单元"
                + String(1 + rng.below(32)) + "0" + String(1 + rng.below(6)) + "室"
        }
        return s
    }

    /// A child's age in days at submission: newborns dominate.
    static func childAgeDays(_ rng: inout Xoshiro256) -> Int {
        let u = rng.unit()
        // Product of two uniforms: most newborns come within their first two months
        // (no libm: its last bits may differ between platforms).
        if u < 0.58 { return 7 + Int(rng.unit() * rng.unit() * 220) }
        if u < 0.75 { return 365 + rng.below(3 * 365) }
        return 4 * 365 + rng.below(13 * 365 + 300)   // up to 17 years and about 10 months
    }

    /// A complete valid form for a child of household `district`, submitted on local day `day`.
    mutating func form(channel: AgencyChannel, district: Int, submittedDay day: Int,
                       rng: inout Xoshiro256) -> Form {
        let childSex: Sex = rng.chance(0.515) ? .male : .female
        let birth = CivilDate(dayNumber: day - Population.childAgeDays(&rng))
        let child = identity(region: region(district: district), birth: birth, sex: childSex, rng: &rng)
        let fatherSurname = Population.surname(&rng)
        let u = rng.unit()
        let relationship: Relationship = u < 0.55 ? .father : u < 0.9 ? .mother : u < 0.97 ? .grandparent : .other
        var childSurname = fatherSurname
        let guardianSex: Sex
        var guardianSurname: String
        let yearsOlder: ClosedRange<Int>
        switch relationship {
        case .father:
            guardianSex = .male; guardianSurname = fatherSurname; yearsOlder = 22...45
        case .mother:
            guardianSex = .female; guardianSurname = Population.surname(&rng); yearsOlder = 20...42
            if rng.chance(0.08) { childSurname = guardianSurname }
        case .grandparent:
            guardianSex = rng.chance(0.5) ? .male : .female
            guardianSurname = guardianSex == .male ? fatherSurname : Population.surname(&rng)
            yearsOlder = 44...68
        case .other:
            guardianSex = rng.chance(0.5) ? .male : .female
            guardianSurname = rng.chance(0.5) ? fatherSurname : Population.surname(&rng)
            yearsOlder = 20...50
        }
        if guardianSurname.isEmpty { guardianSurname = fatherSurname }
        let guardianBirth = CivilDate(dayNumber: child.birthDate.dayNumber
            - rng.int(in: yearsOlder.lowerBound * 365...yearsOlder.upperBound * 365))
        let guardian = identity(region: guardianRegion(household: district, rng: &rng), birth: guardianBirth,
                                sex: guardianSex, rng: &rng)
        return Form(
            channel: channel,
            childName: childSurname + Population.childGivenName(childSex, &rng),
            childID: child.text, childBirth: child.birthDate, childSex: childSex,
            guardianName: guardianSurname + Population.adultGivenName(guardianSex, &rng),
            guardianID: guardian.text, relationship: relationship,
            phone: Population.phone(&rng),
            registerNumber: Population.registerNumber(district: district, &rng),
            address: Population.address(district: district, &rng),
            documents: rng.chance(0.86) ? Documents.all : Documents.required)
    }
}
