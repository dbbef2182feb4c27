import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// One test per rule of the Validation table of queue-format.md, each with a line that fails
/// exactly that rule, and a fully valid line of every agency event type.
@Suite("Outbox line validation")
struct ValidationTests {
    typealias F = ValidationFixture
    let validator = EventLineValidator(mode: .outbox, now: F.now)

    func verdict(_ value: JSONValue, lastSeq: Int64? = nil) -> Result<QueueEvent, QuarantineReason> {
        validator.validate(F.bytes(value), lineNumber: 5, lastSeq: lastSeq)
    }

    func code(_ value: JSONValue, lastSeq: Int64? = nil) -> QuarantineCode? {
        if case .failure(let r) = verdict(value, lastSeq: lastSeq) { return r.code }
        return nil
    }

    func reason(_ value: JSONValue, lastSeq: Int64? = nil) -> QuarantineReason? {
        if case .failure(let r) = verdict(value, lastSeq: lastSeq) { return r }
        return nil
    }

    func rawCode(_ bytes: [UInt8]) -> QuarantineCode? {
        if case .failure(let r) = validator.validate(bytes, lineNumber: 1, lastSeq: nil) { return r.code }
        return nil
    }

    // MARK: Valid lines

    @Test("a valid submitted line passes", arguments: ["submitted", "amended", "documents_verified", "withdrawn", "card_issued"])
    func validLinePasses(type: String) throws {
        let result = verdict(F.event(type: type), lastSeq: 16)
        let event = try result.get()
        #expect(event.seq == 17)
        #expect(event.type.rawValue == type)
        #expect(event.eventID == UUID(uuidString: F.eventID))
        #expect(event.applicationID == UUID(uuidString: F.applicationID))
        #expect(event.occurredAt == Timestamp(rfc3339: F.occurredAt))
        #expect(event.lineNumber == 5)
        #expect(event.data == F.data(for: type))
    }

    @Test func uuidsInUpperCaseAreAccepted() throws {
        let line = F.event().setting("event_id", to: .string(F.eventID.uppercased()))
        #expect(try verdict(line).get().eventID == UUID(uuidString: F.eventID))
    }

    @Test func canonicalDataIsCompactWithSortedKeys() throws {
        let event = try verdict(F.event(type: "card_issued")).get()
        #expect(EventLineValidator.canonicalDataJSON(event)
            == #"{"card_number":"A12345678","collected_by":{"name":"李梅","relationship":"mother"}}"#)
    }

    // MARK: The rules, in the spec's words

    @Test("malformed_json: not a JSON object, or not valid UTF-8")
    func malformedJSON() {
        #expect(rawCode(Array("{\"seq\": 1,".utf8)) == .malformedJSON)
        #expect(rawCode(Array("[1, 2]".utf8)) == .malformedJSON)
        #expect(rawCode(Array("\"text\"".utf8)) == .malformedJSON)
        #expect(rawCode([]) == .malformedJSON)
        var bytes = F.bytes(F.event())
        bytes[bytes.count / 2] = 0xFF
        let r = validator.validate(bytes, lineNumber: 1, lastSeq: nil)
        guard case .failure(let reason) = r else { Issue.record("accepted invalid UTF-8"); return }
        #expect(reason.code == .malformedJSON)
        #expect(reason.detail.contains("not valid UTF-8"))
        // Duplicate keys make a line ambiguous.
        #expect(rawCode(Array(#"{"seq": 1, "seq": 2}"#.utf8)) == .malformedJSON)
    }

    @Test("line_too_long: longer than 1 MiB")
    func lineTooLong() {
        let padding = String(repeating: "x", count: 1_048_576)
        let long = F.event().setting("note", to: .string(padding))
        #expect(code(long) == .lineTooLong)
        // Exactly 1 MiB is allowed (the rule says longer than).
        let base = F.bytes(F.event().setting("note", to: ""))
        let exact = F.event().setting("note", to: .string(String(repeating: "x", count: 1_048_576 - base.count)))
        #expect(F.bytes(exact).count == 1_048_576)
        #expect(code(exact) == nil)
    }

    @Test("missing_field: a required field is absent")
    func missingField() {
        for path in ["seq", "event_id", "application_id", "type", "occurred_at", "data", "data.channel",
                     "data.child", "data.child.name", "data.child.id_number", "data.child.birth_date",
                     "data.child.sex", "data.guardian.name", "data.guardian.id_number",
                     "data.guardian.relationship", "data.guardian.phone", "data.household.register_number",
                     "data.household.address", "data.documents"]
        {
            #expect(code(F.event().setting(path, to: nil)) == .missingField, "\(path)")
        }
        #expect(code(F.event().setting("data.child.name", to: .null)) == .missingField)
        #expect(code(F.event().setting("data.child.name", to: "")) == .missingField)
        #expect(code(F.event(type: "amended").setting("data.base_version", to: nil)) == .missingField)
        #expect(code(F.event(type: "amended").setting("data.changes", to: [:])) == .missingField)
        #expect(code(F.event(type: "documents_verified").setting("data.documents", to: [])) == .missingField)
        #expect(code(F.event(type: "withdrawn").setting("data.reason", to: nil)) == .missingField)
        #expect(code(F.event(type: "card_issued").setting("data.card_number", to: nil)) == .missingField)
        #expect(code(F.event(type: "card_issued").setting("data.collected_by.name", to: nil)) == .missingField)
        #expect(reason(F.event().setting("data.guardian.phone", to: nil))?.detail == "guardian.phone is missing")
    }

    @Test("wrong_type: a required field is of the wrong JSON type")
    func wrongType() {
        #expect(code(F.event().setting("seq", to: "17")) == .wrongType)
        #expect(code(F.event().setting("seq", to: .double(17))) == .wrongType)
        #expect(code(F.event().setting("seq", to: 0)) == .wrongType)
        #expect(code(F.event().setting("seq", to: -3)) == .wrongType)
        #expect(code(F.event().setting("event_id", to: 5)) == .wrongType)
        #expect(code(F.event().setting("type", to: ["submitted"])) == .wrongType)
        #expect(code(F.event().setting("occurred_at", to: 1_700_000_000)) == .wrongType)
        #expect(code(F.event().setting("data", to: "{}")) == .wrongType)
        #expect(code(F.event().setting("data.child", to: "王小明")) == .wrongType)
        #expect(code(F.event().setting("data.guardian.phone", to: 13_812_345_678)) == .wrongType)
        #expect(code(F.event().setting("data.documents", to: "photo")) == .wrongType)
        #expect(code(F.event().setting("data.documents", to: ["photo", 3])) == .wrongType)
        // A birth date that is not a real date.
        #expect(code(F.event().setting("data.child.birth_date", to: "2019-02-30")) == .wrongType)
        #expect(code(F.event().setting("data.child.birth_date", to: "15/03/2019")) == .wrongType)
        #expect(code(F.event(type: "amended").setting("data.base_version", to: "3")) == .wrongType)
        #expect(code(F.event(type: "amended").setting("data.base_version", to: 0)) == .wrongType)
        #expect(code(F.event(type: "amended").setting("data.changes", to: ["guardian.name", "x"])) == .wrongType)
        #expect(code(F.event(type: "withdrawn").setting("data.reason", to: 3)) == .wrongType)
        #expect(code(F.event(type: "card_issued").setting("data.collected_by", to: "mother")) == .wrongType)
        #expect(reason(F.event().setting("data.household.address", to: 5))?.detail
            == "household.address: expected a string, found an integer")
    }

    @Test("seq_not_increasing: seq not greater than every earlier seq in the file")
    func seqNotIncreasing() {
        #expect(code(F.event(seq: 17), lastSeq: 17) == .seqNotIncreasing)
        #expect(code(F.event(seq: 3), lastSeq: 17) == .seqNotIncreasing)
        #expect(code(F.event(seq: 18), lastSeq: 17) == nil)
        #expect(code(F.event(seq: 1), lastSeq: nil) == nil)
    }

    @Test func verdictReportsTheSeqEvenWhenALaterRuleFails() {
        let bad = F.event(seq: 40).setting("data.guardian.phone", to: "12345")
        let v = validator.check(F.bytes(bad), lineNumber: 9, lastSeq: 30)
        #expect(v.reason?.code == .badPhone)
        #expect(v.seq == 40)
        #expect(validator.check(Array("{".utf8), lineNumber: 1, lastSeq: nil).seq == nil)
    }

    @Test("bad_uuid: event_id or application_id not a UUID")
    func badUUID() {
        #expect(code(F.event().setting("event_id", to: "4b0d5c1e6f0a4f5e9a571f1d3c9f2a10")) == .badUUID)
        #expect(code(F.event().setting("event_id", to: "4b0d5c1e-6f0a-4f5e-9a57-1f1d3c9f2a1g")) == .badUUID)
        #expect(code(F.event().setting("application_id", to: "9e2f...")) == .badUUID)
        #expect(code(F.event().setting("application_id", to: "")) == .badUUID)
    }

    @Test("unknown_type: type not an agency event type")
    func unknownType() {
        #expect(code(F.event().setting("type", to: "approved")) == .unknownType)
        #expect(code(F.event().setting("type", to: "conflict_opened")) == .unknownType)
        #expect(code(F.event().setting("type", to: "Submitted")) == .unknownType)
        #expect(code(F.event().setting("type", to: "cancelled")) == .unknownType)
    }

    @Test("bad_timestamp: not RFC 3339 with offset")
    func badTimestamp() {
        for text in ["2026-10-03T09:15:27", "2026-10-03 09:15", "2026-10-03", "yesterday", "2026-13-03T09:15:27+08:00"] {
            #expect(code(F.event().setting("occurred_at", to: .string(text))) == .badTimestamp, "\(text)")
        }
        #expect(code(F.event().setting("occurred_at", to: "2026-10-03T01:15:27.250Z")) == nil)
    }

    @Test("occurred_in_future: more than 10 minutes ahead of the syncing machine's clock")
    func occurredInFuture() {
        // now is 2026-10-03T12:15:27+08:00
        #expect(code(F.event().setting("occurred_at", to: "2026-10-03T12:25:28+08:00")) == .occurredInFuture)
        #expect(code(F.event().setting("occurred_at", to: "2026-10-03T04:25:28Z")) == .occurredInFuture)
        #expect(code(F.event().setting("occurred_at", to: "2026-10-03T12:25:27+08:00")) == nil)
        #expect(code(F.event().setting("occurred_at", to: "2026-10-03T12:24:00+08:00")) == nil)
    }

    @Test("invalid_id_number: not an 18-character mainland resident identity number")
    func invalidIDNumber() {
        let wrongCheck = F.withWrongCheckCharacter(F.childID)
        let r = reason(F.event().setting("data.child.id_number", to: .string(wrongCheck)))
        #expect(r?.code == .invalidIDNumber)
        #expect(r?.detail.hasPrefix("child.id_number: ") == true)
        #expect(r?.detail.contains("check character") == true)
        #expect(r?.detail.contains(String(F.childID.last!)) == true) // names the expected character
        let guardian = reason(F.event().setting("data.guardian.id_number", to: .string(F.withWrongCheckCharacter(F.guardianID))))
        #expect(guardian?.code == .invalidIDNumber)
        #expect(guardian?.detail.hasPrefix("guardian.id_number: ") == true)
        for bad in ["43010220190315001", "4301022019031500123", "4301022019031500A1", "43010220190315001x"] {
            #expect(code(F.event().setting("data.child.id_number", to: .string(bad))) == .invalidIDNumber, "\(bad)")
        }
        // Characters 7-14 not a real date (with a correct check character).
        let impossible = "430102" + "20190230" + "001"
        let withCheck = impossible + String(IdentityNumber.checkCharacter(for: impossible)!)
        #expect(code(F.event().setting("data.child.id_number", to: .string(withCheck))) == .invalidIDNumber)
    }

    @Test("id_birth_mismatch: birth_date differs from the date inside child.id_number, or sex disagrees with the 17th digit")
    func idBirthMismatch() {
        #expect(code(F.event().setting("data.child.birth_date", to: "2019-03-16")) == .idBirthMismatch)
        #expect(code(F.event().setting("data.child.sex", to: "F")) == .idBirthMismatch)
        let girl = F.idNumber(birth: "2019-03-15", sequence: 2)
        #expect(code(F.event().setting("data.child.id_number", to: .string(girl))) == .idBirthMismatch)
        let girlLine = F.event().setting("data.child.id_number", to: .string(girl)).setting("data.child.sex", to: "F")
        #expect(code(girlLine) == nil)
    }

    @Test("not_a_minor: the child is 18 or older at occurred_at")
    func notAMinor() {
        func child(born: String) -> JSONValue {
            F.event().setting("data.child.id_number", to: .string(F.idNumber(birth: born, sequence: 1)))
                .setting("data.child.birth_date", to: .string(born))
        }
        // occurred_at is 2026-10-03 (+08:00): 18th birthday that day → not a minor.
        #expect(code(child(born: "2008-10-03")) == .notAMinor)
        #expect(code(child(born: "2008-10-04")) == nil)
        // The date of occurred_at in its own offset: 2026-10-02T20:00-04:00 is still 2 October there.
        let evening = child(born: "2008-10-03").setting("occurred_at", to: "2026-10-02T20:00:00-04:00")
        #expect(code(evening) == nil)
    }

    @Test("guardian_not_adult: the guardian is under 18 at occurred_at")
    func guardianNotAdult() {
        func guardian(born: String) -> JSONValue {
            F.event().setting("data.guardian.id_number", to: .string(F.idNumber(birth: born, sequence: 20)))
        }
        #expect(code(guardian(born: "2008-10-04")) == .guardianNotAdult)
        #expect(code(guardian(born: "2008-10-03")) == nil)
    }

    @Test("missing_document: a submitted event lacks birth_certificate, household_register or guardian_id")
    func missingDocument() {
        for required in ["birth_certificate", "household_register", "guardian_id"] {
            let docs = ["birth_certificate", "household_register", "guardian_id", "photo"].filter { $0 != required }
            let line = F.event().setting("data.documents", to: .array(docs.map { .string($0) }))
            #expect(code(line) == .missingDocument, "\(required)")
        }
        #expect(code(F.event().setting("data.documents", to: ["birth_certificate", "household_register", "guardian_id"])) == nil)
    }

    @Test("bad_phone: not a mainland mobile nor a landline")
    func badPhone() {
        for bad in ["12812345678", "1381234567", "138123456789", "+8613812345678", "0731-845", "731-84561234", "phone"] {
            #expect(code(F.event().setting("data.guardian.phone", to: .string(bad))) == .badPhone, "\(bad)")
        }
        for good in ["19912345678", "0731-84561234", "073184561234", "010-1234567"] {
            #expect(code(F.event().setting("data.guardian.phone", to: .string(good))) == nil, "\(good)")
        }
        #expect(reason(F.event().setting("data.guardian.phone", to: "12812345678"))?.detail.hasSuffix("found 128******78") == true)
        let amended = F.event(type: "amended").setting(["data", "changes", "guardian.phone"], to: "1234")
        #expect(code(amended) == .badPhone)
    }

    @Test("immutable_field: an amended change to a path that is not changeable")
    func immutableField() {
        for path in ["child.id_number", "child.birth_date", "child.sex", "channel", "child.nickname"] {
            let line = F.event(type: "amended").setting(["data", "changes", path], to: "x")
            #expect(code(line) == .immutableField, "\(path)")
        }
        let allChangeable: JSONValue = [
            "child.name": "王小华", "guardian.name": "李梅", "guardian.relationship": "mother",
            "guardian.phone": "0731-84561234", "household.register_number": "430102000999",
            "household.address": "长沙市芙蓉区八一路1号", "documents": ["photo"],
        ]
        #expect(code(F.event(type: "amended").setting("data.changes", to: allChangeable)) == nil)
    }

    @Test("bad_enum: sex, relationship, channel or a document name outside its set")
    func badEnum() {
        #expect(code(F.event().setting("data.child.sex", to: "male")) == .badEnum)
        #expect(code(F.event().setting("data.guardian.relationship", to: "uncle")) == .badEnum)
        #expect(code(F.event().setting("data.channel", to: "mail")) == .badEnum)
        #expect(code(F.event().setting("data.documents", to: ["birth_certificate", "household_register", "guardian_id", "passport"])) == .badEnum)
        #expect(code(F.event(type: "documents_verified").setting("data.documents", to: ["selfie"])) == .badEnum)
        #expect(code(F.event(type: "card_issued").setting("data.collected_by.relationship", to: "neighbour")) == .badEnum)
        #expect(code(F.event(type: "amended").setting(["data", "changes", "guardian.relationship"], to: "aunt")) == .badEnum)
        #expect(code(F.event(type: "amended").setting(["data", "changes", "documents"], to: ["visa"])) == .badEnum)
    }

    // MARK: Personal data

    @Test func detailsNeverContainAFullIdentityOrPhoneNumber() {
        let wrongChild = F.withWrongCheckCharacter(F.childID)
        let wrongGuardian = F.withWrongCheckCharacter(F.guardianID)
        let youngGuardian = F.idNumber(birth: "2010-05-05", sequence: 20)
        let secrets = [F.childID, F.guardianID, wrongChild, wrongGuardian, youngGuardian, F.phone, "12812345678",
                       String(F.childID.prefix(17)), String(F.childID.prefix(14))]
        let lines: [JSONValue] = [
            F.event().setting("data.child.id_number", to: .string(wrongChild)),
            F.event().setting("data.child.id_number", to: .string(String(F.childID.prefix(17)))),
            F.event().setting("data.guardian.id_number", to: .string(wrongGuardian)),
            F.event().setting("data.guardian.id_number", to: .string(youngGuardian)),
            F.event().setting("data.child.birth_date", to: "2019-03-16"),
            F.event().setting("data.child.sex", to: "F"),
            F.event().setting("data.guardian.phone", to: "12812345678"),
            F.event().setting("data.guardian.relationship", to: .string(F.guardianID)),
            F.event().setting("data.channel", to: .string(F.phone)),
            F.event().setting("type", to: .string(F.childID)),
            F.event().setting("event_id", to: .string(F.childID)),
            F.event(type: "amended").setting(["data", "changes", F.childID], to: "x"),
            F.event(type: "amended").setting(["data", "changes", "guardian.phone"], to: "12812345678"),
            F.event().setting("data.documents", to: .array([.string(F.guardianID)])),
        ]
        for line in lines {
            guard let r = reason(line) else {
                Issue.record("expected a failure")
                continue
            }
            for secret in secrets {
                #expect(!r.detail.contains(secret), "\(r.code.rawValue): \(r.detail)")
            }
        }
    }

    // MARK: Bureau import

    @Test("bureau import: bureau types without seq", arguments: ["approved", "rejected", "returned", "card_produced", "card_dispatched"])
    func bureauImport(type: String) throws {
        let bureau = EventLineValidator(mode: .bureauImport, now: F.now)
        let line = F.bytes(F.event(type: type, seq: nil))
        let event = try bureau.validate(line, lineNumber: 1, lastSeq: nil).get()
        #expect(event.type.rawValue == type)
        #expect(event.seq == 0)
    }

    @Test func bureauImportRejectsAgencyTypesAndBadData() {
        let bureau = EventLineValidator(mode: .bureauImport, now: F.now)
        func code(_ v: JSONValue) -> QuarantineCode? {
            if case .failure(let r) = bureau.validate(F.bytes(v), lineNumber: 1, lastSeq: nil) { return r.code }
            return nil
        }
        #expect(code(F.event(type: "submitted", seq: nil)) == .unknownType)
        #expect(code(F.event(type: "rejected", seq: nil).setting("data.reason", to: nil)) == .missingField)
        #expect(code(F.event(type: "card_produced", seq: nil).setting("data.card_number", to: "")) == .missingField)
        #expect(code(F.event(type: "card_dispatched", seq: nil).setting("data.agency_code", to: "cs fr")) == .wrongType)
    }
}
