import CardCore
import Foundation

/// Every rule of the spec's validation table that an outbox line breaks — all of them, not the
/// first one, so that a test can insist that an injected fault breaks exactly one rule and a
/// valid line none, whatever order a real validator checks them in.
struct ReferenceValidator {
    static let changeable: Set<String> = ["child.name", "guardian.name", "guardian.relationship", "guardian.phone",
                                          "household.register_number", "household.address", "documents"]
    static let documents: Set<String> = ["birth_certificate", "household_register", "guardian_id", "photo"]
    static let relationships: Set<String> = ["father", "mother", "grandparent", "other"]

    /// The largest `seq` of earlier lines (of valid lines only, and of every line whose seq could be read).
    var maxValidSeq = 0
    var maxAnySeq = 0
    var now: Timestamp

    mutating func violations(_ raw: Data) -> Set<QuarantineCode> {
        var found: Set<QuarantineCode> = []
        if raw.count > 1 << 20 { found.insert(.lineTooLong) }
        guard let object = jsonObject(raw) else { found.insert(.malformedJSON); return found }
        let seq = jsonInt(object["seq"])
        for key in ["seq", "event_id", "application_id", "type", "occurred_at", "data"] where object[key] == nil {
            found.insert(.missingField)
        }
        if object["seq"] != nil, seq == nil { found.insert(.wrongType) }
        for key in ["event_id", "application_id", "type", "occurred_at"] where object[key] != nil && !(object[key] is String) {
            found.insert(.wrongType)
        }
        if object["data"] != nil, !(object["data"] is [String: Any]) { found.insert(.wrongType) }
        if let seq {
            if seq < 1 || seq <= maxValidSeq || seq <= maxAnySeq { found.insert(.seqNotIncreasing) }
        }
        for key in ["event_id", "application_id"] {
            if let s = object[key] as? String, UUID(uuidString: s) == nil { found.insert(.badUUID) }
        }
        let type = (object["type"] as? String).flatMap(EventType.init(rawValue:))
        if object["type"] is String, type.map({ EventType.agencyTypes.contains($0) }) != true { found.insert(.unknownType) }
        var at: Timestamp?
        if let s = object["occurred_at"] as? String {
            at = Timestamp(rfc3339: s)
            if at == nil { found.insert(.badTimestamp) }
            if let at, at.microseconds > now.microseconds + 600_000_000 { found.insert(.occurredInFuture) }
        }
        if let data = object["data"] as? [String: Any], let type {
            checkData(type, data, at, &found)
        }
        if let seq {
            maxAnySeq = max(maxAnySeq, seq)
            if found.isEmpty { maxValidSeq = max(maxValidSeq, seq) }
        }
        return found
    }

    private func checkData(_ type: EventType, _ data: [String: Any], _ at: Timestamp?, _ found: inout Set<QuarantineCode>) {
        func string(_ object: [String: Any]?, _ key: String) -> String? {
            guard let object else { found.insert(.missingField); return nil }
            guard let value = object[key] else { found.insert(.missingField); return nil }
            guard let s = value as? String else { found.insert(.wrongType); return nil }
            return s
        }
        func object(_ key: String) -> [String: Any]? {
            guard let value = data[key] else { found.insert(.missingField); return nil }
            guard let o = value as? [String: Any] else { found.insert(.wrongType); return nil }
            return o
        }
        func documentList(_ value: Any?) -> [String]? {
            guard let value else { found.insert(.missingField); return nil }
            guard let list = value as? [Any] else { found.insert(.wrongType); return nil }
            let names = list.compactMap { $0 as? String }
            if names.count != list.count { found.insert(.wrongType) }
            if names.contains(where: { !ReferenceValidator.documents.contains($0) }) { found.insert(.badEnum) }
            return names
        }
        let day = at.map { t -> CivilDate in
            let (y, m, d) = t.civilDate(offsetSeconds: t.offsetSeconds)
            return CivilDate(year: y, month: m, day: d)!
        }
        switch type {
        case .submitted:
            if let channel = string(data, "channel"), AgencyChannel(rawValue: channel) == nil { found.insert(.badEnum) }
            let child = object("child"), guardian = object("guardian"), household = object("household")
            _ = string(child, "name"); _ = string(guardian, "name")
            _ = string(household, "register_number"); _ = string(household, "address")
            let childID = string(child, "id_number").map { IdentityNumber($0) }
            let guardianID = string(guardian, "id_number").map { IdentityNumber($0) }
            if childID == .some(nil) || guardianID == .some(nil) { found.insert(.invalidIDNumber) }
            let birth = string(child, "birth_date").map { CivilDate(iso: $0) }
            if birth == .some(nil) { found.insert(.wrongType) }
            let sex = string(child, "sex")
            if let sex, Sex(rawValue: sex) == nil { found.insert(.badEnum) }
            if let id = childID ?? nil {
                if let b = birth ?? nil, b != id.birthDate { found.insert(.idBirthMismatch) }
                if let sex, let s = Sex(rawValue: sex), s != id.sex { found.insert(.idBirthMismatch) }
                if let day, id.birthDate.age(on: day) >= 18 { found.insert(.notAMinor) }
            }
            if let id = guardianID ?? nil, let day, id.birthDate.age(on: day) < 18 { found.insert(.guardianNotAdult) }
            if let r = string(guardian, "relationship"), !ReferenceValidator.relationships.contains(r) { found.insert(.badEnum) }
            if let phone = string(guardian, "phone"), !PhoneNumber.isValid(phone) { found.insert(.badPhone) }
            if let docs = documentList(data["documents"]),
               !["birth_certificate", "household_register", "guardian_id"].allSatisfy(docs.contains) {
                found.insert(.missingDocument)
            }
        case .amended:
            if data["base_version"] == nil { found.insert(.missingField) } else if jsonInt(data["base_version"]) == nil { found.insert(.wrongType) }
            guard let changes = object("changes") else { return }
            for (path, value) in changes {
                guard ReferenceValidator.changeable.contains(path) else { found.insert(.immutableField); continue }
                if path == "documents" { _ = documentList(value); continue }
                guard let s = value as? String else { found.insert(.wrongType); continue }
                if path == "guardian.phone", !PhoneNumber.isValid(s) { found.insert(.badPhone) }
                if path == "guardian.relationship", !ReferenceValidator.relationships.contains(s) { found.insert(.badEnum) }
            }
        case .documentsVerified:
            _ = documentList(data["documents"])
        case .withdrawn:
            _ = string(data, "reason")
        case .cardIssued:
            _ = string(data, "card_number")
            let by = object("collected_by")
            _ = string(by, "name")
            if let r = string(by, "relationship"), !ReferenceValidator.relationships.contains(r) { found.insert(.badEnum) }
        default:
            break
        }
    }
}
