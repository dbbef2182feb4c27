import Foundation
import CardCore

/// Where an invalid line goes and what surrounds it.
struct FaultContext {
    let agency: AgencyInfo
    /// `occurred_at` of the valid line just before.
    let time: Int64
    /// The application of the valid line just before.
    let previousApp: UUIDBits
    /// `seq` of the valid line just before.
    let lastValidSeq: Int
    /// The next unused `seq`.
    let seq: Int
}

/// A line built field by field, so that a fault can drop or replace exactly one field.
private struct RawLine {
    var fields: [(key: String, value: [UInt8])]

    var bytes: [UInt8] {
        var b: [UInt8] = [0x7B]
        for (i, f) in fields.enumerated() {
            if i > 0 { JSONBytes.append(", ", to: &b) }
            JSONBytes.appendString(f.key, to: &b)
            JSONBytes.append(": ", to: &b)
            b.append(contentsOf: f.value)
        }
        b.append(0x7D)
        return b
    }

    mutating func set(_ key: String, _ value: [UInt8]) {
        if let i = fields.firstIndex(where: { $0.key == key }) { fields[i].value = value } else { fields.append((key, value)) }
    }

    mutating func remove(_ key: String) { fields.removeAll { $0.key == key } }
}

private func quoted(_ s: String) -> [UInt8] {
    var b: [UInt8] = []
    JSONBytes.appendString(s, to: &b)
    return b
}

private func raw(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Builds invalid outbox lines, one per quarantine code, each wrong in exactly one way: every
/// other field is what a valid line would hold, so a validator finds precisely the intended code
/// whatever order it checks the rules in.
struct FaultFactory {
    var rng: Xoshiro256
    var population = Population()

    /// The line (without its newline) and whether it uses up `context.seq`.
    mutating func line(_ code: QuarantineCode, _ c: FaultContext) -> (bytes: [UInt8], consumesSeq: Bool) {
        switch code {
        case .malformedJSON: return (malformed(c), true)
        case .lineTooLong:
            let reason = String(repeating: "申请撤回，", count: 72_000)
            let line = base(c, type: "withdrawn", app: c.previousApp, data: raw("{\"reason\": ") + quoted(reason) + raw("}"))
            return (line.bytes, true)
        case .missingField:
            var line = anyBase(c)
            line.remove(rng.pick(["event_id", "application_id", "occurred_at", "data"]))
            return (line.bytes, true)
        case .wrongType:
            var line = anyBase(c)
            switch rng.below(3) {
            case 0: line.set("seq", quoted(String(c.seq)))
            case 1: line.set("data", quoted("见附件"))
            default: line.set("data", raw("[]"))
            }
            return (line.bytes, true)
        case .seqNotIncreasing:
            var line = rng.chance(0.5) ? submitted(c, form: freshForm(c), patch: nil) : verified(c)
            line.set("seq", raw(String(max(1, c.lastValidSeq - rng.below(3)))))
            return (line.bytes, false)
        case .badUUID:
            var line = anyBase(c)
            let key = rng.chance(0.5) ? "event_id" : "application_id"
            var text = rng.uuid().string
            switch rng.below(3) {
            case 0:
                var chars = Array(text)
                var i = rng.below(36)
                while chars[i] == "-" { i = rng.below(36) }
                chars[i] = rng.chance(0.5) ? "g" : "z"
                text = String(chars)
            case 1: text.removeLast()
            default:
                let day = CivilDate(dayNumber: ShanghaiTime.day(of: c.time))
                text = "APP-" + String(day.year) + String(rng.int(in: 100_000...999_999))
            }
            line.set(key, quoted(text))
            return (line.bytes, true)
        case .unknownType:
            var line = verified(c)
            line.set("type", quoted(rng.pick(["approved", "card_lost", "submit", "cancelled", "card_produced"])))
            return (line.bytes, true)
        case .badTimestamp:
            var line = rng.chance(0.5) ? verified(c) : withdrawn(c)
            var stamp: [UInt8] = []
            JSONBytes.appendTimestamp(c.time, to: &stamp)
            let text = String(decoding: stamp, as: UTF8.self)
            let date = String(text.prefix(10)), clock = String(text.dropFirst(11).prefix(8))
            let bad: String
            switch rng.below(5) {
            case 0: bad = date + " " + clock
            case 1: bad = date + "T" + clock
            case 2: bad = date.replacingOccurrences(of: "-", with: "/") + " " + clock
            case 3: bad = date + "T" + clock + "+0800"
            default: bad = String(date.prefix(4)) + "-02-30T" + clock + "+08:00"
            }
            line.set("occurred_at", quoted(bad))
            return (line.bytes, true)
        case .occurredInFuture:
            var line = verified(c)
            var stamp: [UInt8] = []
            JSONBytes.appendQuotedTimestamp(c.time + 36_525 * 86_400 + Int64(rng.below(365 * 86_400)), to: &stamp)
            line.set("occurred_at", stamp)
            return (line.bytes, true)
        case .invalidIDNumber:
            let form = freshForm(c)
            var patch = FormPatch()
            switch rng.below(4) {
            case 0: patch.childID = wrongCheck(form.childID)
            case 1: patch.guardianID = wrongCheck(form.guardianID)
            case 2: patch.guardianID = String(form.guardianID.dropLast())
            default:
                var chars = Array(form.childID)
                chars[14] = "A"
                patch.childID = String(chars)
            }
            return (submitted(c, form: form, patch: patch).bytes, true)
        case .idBirthMismatch:
            let form = freshForm(c)
            var patch = FormPatch()
            if rng.chance(0.5) {
                patch.childBirth = CivilDate(dayNumber: form.childBirth.dayNumber - rng.int(in: 1...20)).description
            } else {
                patch.childSex = form.childSex == .male ? "F" : "M"
            }
            return (submitted(c, form: form, patch: patch).bytes, true)
        case .notAMinor:
            var form = freshForm(c)
            let today = CivilDate(dayNumber: ShanghaiTime.day(of: c.time))
            let year = today.year - 18
            let anniversary = CivilDate(year: year, month: today.month,
                                        day: min(today.day, Timestamp.daysInMonth(year: year, month: today.month)))!
            setChild(&form, birth: CivilDate(dayNumber: anniversary.dayNumber - rng.int(in: 1...400)), c)
            setGuardian(&form, birth: CivilDate(dayNumber: form.childBirth.dayNumber - rng.int(in: 25 * 365...40 * 365)))
            return (submitted(c, form: form, patch: nil).bytes, true)
        case .guardianNotAdult:
            var form = freshForm(c)
            let today = CivilDate(dayNumber: ShanghaiTime.day(of: c.time))
            setChild(&form, birth: CivilDate(dayNumber: today.dayNumber - rng.int(in: 7...60)), c)
            let year = today.year - 16
            let sixteenth = CivilDate(year: year, month: today.month,
                                      day: min(today.day, Timestamp.daysInMonth(year: year, month: today.month)))!
            form.relationship = rng.chance(0.5) ? .mother : .father
            setGuardian(&form, birth: CivilDate(dayNumber: sixteenth.dayNumber - rng.int(in: 0...600)))
            return (submitted(c, form: form, patch: nil).bytes, true)
        case .missingDocument:
            let form = freshForm(c)
            let missing = rng.below(3)
            var names = ["birth_certificate", "household_register", "guardian_id"]
            names.remove(at: missing)
            if rng.chance(0.6) { names.append("photo") }
            var patch = FormPatch()
            patch.documents = names
            return (submitted(c, form: form, patch: patch).bytes, true)
        case .badPhone:
            let good = Population.mobile(&rng)
            let bad: String
            switch rng.below(5) {
            case 0: bad = String(good.dropLast())
            case 1: bad = "12" + String(good.dropFirst(2))
            case 2: bad = String(good.prefix(3)) + "-" + String(good.dropFirst(3).prefix(4)) + "-" + String(good.suffix(4))
            case 3: bad = "+86" + good
            default: bad = "0731-" + String(good.suffix(5))
            }
            if rng.chance(0.3) {
                return (amended(c, changes: raw("{\"guardian.phone\": ") + quoted(bad) + raw("}")).bytes, true)
            }
            var patch = FormPatch()
            patch.phone = bad
            return (submitted(c, form: freshForm(c), patch: patch).bytes, true)
        case .immutableField:
            let other = freshForm(c)
            let changes: [UInt8]
            switch rng.below(3) {
            case 0: changes = raw("{\"child.id_number\": ") + quoted(other.childID) + raw("}")
            case 1: changes = raw("{\"child.birth_date\": ") + quoted(other.childBirth.description) + raw("}")
            default: changes = raw("{\"child.sex\": ") + quoted(rng.chance(0.5) ? "M" : "F") + raw("}")
            }
            return (amended(c, changes: changes).bytes, true)
        case .badEnum:
            let form = freshForm(c)
            var patch = FormPatch()
            switch rng.below(4) {
            case 0: patch.relationship = rng.pick(["uncle", "父亲", "guardian"])
            case 1: patch.channel = rng.pick(["kiosk", "wechat"])
            case 2: patch.documents = ["birth_certificate", "household_register", "guardian_id", "passport"]
            default:
                let data = raw("{\"documents\": [\"birth_certificate\", \"passport\"]}")
                return (base(c, type: "documents_verified", app: c.previousApp, data: data).bytes, true)
            }
            return (submitted(c, form: form, patch: patch).bytes, true)
        }
    }

    // MARK: Valid bases

    private mutating func base(_ c: FaultContext, type: String, app: UUIDBits, data: [UInt8]) -> RawLine {
        var stamp: [UInt8] = []
        JSONBytes.appendQuotedTimestamp(c.time, to: &stamp)
        return RawLine(fields: [
            ("seq", raw(String(c.seq))),
            ("event_id", quoted(rng.uuid().string)),
            ("application_id", quoted(app.string)),
            ("type", quoted(type)),
            ("occurred_at", stamp),
            ("data", data),
        ])
    }

    private mutating func anyBase(_ c: FaultContext) -> RawLine {
        switch rng.below(3) {
        case 0: return submitted(c, form: freshForm(c), patch: nil)
        case 1: return verified(c)
        default: return withdrawn(c)
        }
    }

    private mutating func freshForm(_ c: FaultContext) -> Form {
        let district = c.agency.district ?? rng.below(ChangshaData.districts.count)
        return population.form(channel: c.agency.agency.channel, district: district,
                               submittedDay: ShanghaiTime.day(of: c.time), rng: &rng)
    }

    private mutating func submitted(_ c: FaultContext, form: Form, patch: FormPatch?) -> RawLine {
        var data: [UInt8] = []
        Renderer.appendSubmitted(form, patch: patch, to: &data)
        return base(c, type: "submitted", app: rng.uuid(), data: data)
    }

    private mutating func verified(_ c: FaultContext) -> RawLine {
        var data: [UInt8] = raw("{\"documents\": ")
        Documents.append(rng.chance(0.7) ? Documents.all : Documents.required, to: &data)
        data.append(0x7D)
        return base(c, type: "documents_verified", app: c.previousApp, data: data)
    }

    private mutating func withdrawn(_ c: FaultContext) -> RawLine {
        base(c, type: "withdrawn", app: c.previousApp,
             data: raw("{\"reason\": ") + quoted(rng.pick(ChangshaData.withdrawalReasons)) + raw("}"))
    }

    private mutating func amended(_ c: FaultContext, changes: [UInt8]) -> RawLine {
        base(c, type: "amended", app: c.previousApp, data: raw("{\"base_version\": 1, \"changes\": ") + changes + raw("}"))
    }

    private mutating func setChild(_ form: inout Form, birth: CivilDate, _ c: FaultContext) {
        let district = c.agency.district ?? rng.below(ChangshaData.districts.count)
        let id = population.identity(region: district, birth: birth, sex: form.childSex, rng: &rng)
        form.childID = id.text
        form.childBirth = id.birthDate
    }

    private mutating func setGuardian(_ form: inout Form, birth: CivilDate) {
        let sex: Sex
        switch form.relationship {
        case .father: sex = .male
        case .mother: sex = .female
        default: sex = IdentityNumber(form.guardianID)?.sex ?? .female
        }
        let region = ChangshaData.districts.count + rng.below(ChangshaData.otherRegionCodes.count)
        form.guardianID = population.identity(region: region, birth: birth, sex: sex, rng: &rng).text
    }

    private mutating func wrongCheck(_ id: String) -> String {
        let right = id.last!
        var other: Character = rng.pick(Array("0123456789X"))
        while other == right { other = rng.pick(Array("0123456789X")) }
        return String(id.dropLast()) + String(other)
    }

    // MARK: Malformed JSON

    private mutating func malformed(_ c: FaultContext) -> [UInt8] {
        switch rng.below(5) {
        case 0:
            // Cut short, on a character boundary, before the closing brace: never valid JSON.
            let full = submitted(c, form: freshForm(c), patch: nil).bytes
            var cut = full.count / 4 + rng.below(full.count * 3 / 4 - 1)
            while cut > 1, full[cut] & 0xC0 == 0x80 { cut -= 1 }
            return Array(full[..<cut])
        case 1:
            // Valid JSON structure, but not valid UTF-8: a 3-byte character cut after two bytes.
            return base(c, type: "withdrawn", app: c.previousApp,
                        data: raw("{\"reason\": \"") + [0xE7, 0x94] + raw("\"}")).bytes
        case 2:
            // Not an object.
            return [0x5B] + verified(c).bytes + [0x5D]
        case 3:
            // Single-quoted key.
            var bytes = verified(c).bytes
            bytes[1] = 0x27; bytes[5] = 0x27
            return bytes
        default:
            // A string value without quotes. (Not a trailing comma: some lenient parsers, Foundation's
            // JSONSerialization among them, accept one.)
            var line = withdrawn(c)
            line.set("event_id", raw(rng.uuid().string))
            return line.bytes
        }
    }
}
