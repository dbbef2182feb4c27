import CardCore
import Foundation

/// Builders for outbox lines in tests: valid identity numbers with real check characters,
/// a valid line of each type, and mutation by path.
public enum ValidationFixture {
    /// A valid identity number: region, birth date, 3-digit sequence (odd = M) and the check
    /// character computed with ISO 7064 MOD 11-2.
    public static func idNumber(region: String = "430102", birth: String, sequence: Int) -> String {
        let digits = birth.replacingOccurrences(of: "-", with: "")
        let seq = String(sequence)
        let first17 = region + digits + String(repeating: "0", count: 3 - seq.count) + seq
        return first17 + String(IdentityNumber.checkCharacter(for: first17)!)
    }

    /// The same number with a wrong check character.
    public static func withWrongCheckCharacter(_ number: String) -> String {
        let last = number.last!
        return String(number.dropLast()) + (last == "1" ? "2" : "1")
    }

    public static let childID = idNumber(birth: "2019-03-15", sequence: 1)     // male
    public static let guardianID = idNumber(birth: "1988-01-01", sequence: 11)  // male
    public static let phone = "13812345678"
    public static let eventID = "4b0d5c1e-6f0a-4f5e-9a57-1f1d3c9f2a10"
    public static let applicationID = "9e2f4b0d-6f0a-4f5e-9a57-1f1d3c9f2a11"
    public static let occurredAt = "2026-10-03T09:15:27+08:00"
    /// The syncing machine's clock in tests: three hours after `occurredAt`.
    public static let now = Timestamp(rfc3339: "2026-10-03T12:15:27+08:00")!

    public static var submittedData: JSONValue {
        [
            "channel": "counter",
            "child": ["name": "王小明", "id_number": .string(childID), "birth_date": "2019-03-15", "sex": "M"],
            "guardian": ["name": "王建国", "id_number": .string(guardianID), "relationship": "father",
                         "phone": .string(phone)],
            "household": ["register_number": "430102000123", "address": "长沙市芙蓉区五一大道100号"],
            "documents": ["birth_certificate", "household_register", "guardian_id", "photo"],
        ]
    }

    public static func data(for type: String) -> JSONValue {
        switch type {
        case "submitted": return submittedData
        case "amended": return ["base_version": 3, "changes": ["guardian.phone": "13900001111"]]
        case "documents_verified": return ["documents": ["birth_certificate", "household_register"]]
        case "withdrawn": return ["reason": "家长撤回申请"]
        case "card_issued": return ["card_number": "A12345678", "collected_by": ["name": "李梅", "relationship": "mother"]]
        case "approved": return [:]
        case "rejected", "returned": return ["reason": "照片不合格"]
        case "card_produced": return ["card_number": "A12345678"]
        case "card_dispatched": return ["agency_code": "CS-FR-001"]
        default: return [:]
        }
    }

    /// A whole line as a JSON object value.
    public static func event(type: String = "submitted", seq: Int64? = 17) -> JSONValue {
        var o: [String: JSONValue] = [
            "event_id": .string(eventID), "application_id": .string(applicationID), "type": .string(type),
            "occurred_at": .string(occurredAt), "data": data(for: type),
        ]
        if let seq { o["seq"] = .int(seq) }
        return .object(o)
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] { JSONWriter.bytes(value) }
}

extension JSONValue {
    /// Sets (or with `nil` removes) the value at a dotted path such as `data.child.sex`.
    /// `data.changes.guardian.phone`-style keys containing dots are addressed with `key:`.
    public func setting(_ path: [String], to newValue: JSONValue?) -> JSONValue {
        guard case .object(var o) = self, let first = path.first else { return self }
        if path.count == 1 {
            o[first] = newValue
        } else {
            o[first] = (o[first] ?? .object([:])).setting(Array(path.dropFirst()), to: newValue)
        }
        return .object(o)
    }

    public func setting(_ dotted: String, to newValue: JSONValue?) -> JSONValue {
        setting(dotted.split(separator: ".").map(String.init), to: newValue)
    }
}
