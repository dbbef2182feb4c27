import CardCore
import Foundation

/// Validates one raw event line against every rule of the Validation table in
/// ../shared/spec/queue-format.md and turns it into a `QueueEvent`, or says why not.
///
/// The same validator serves `outbox.jsonl` (agency event types, `seq` required) and
/// `cardsync bureau import` (bureau event types, no `seq`; events get `seq` 0).
///
/// ## Check order
/// The first failing rule decides the code:
/// 1. `line_too_long` — more than 1 MiB (1,048,576 bytes, the `\n` not counted).
/// 2. `malformed_json` — not valid UTF-8, not JSON, not an object. Not JSON includes what the
///    parser refuses by choice (`JSONParser`): duplicate keys, lone surrogate escapes, numbers
///    beyond a Double (`1e400`), nesting deeper than 64 levels, a byte order mark.
/// 3. `missing_field` / `wrong_type` of the top-level fields in the order `seq` (outbox only),
///    `event_id`, `application_id`, `type`, `occurred_at`, `data`. A field that is `null` counts
///    as missing. `seq` must be a JSON integer (`17`, not `17.0` or `"17"`) and ≥ 1: a `seq`
///    below 1 is `wrong_type` ("an integer ≥ 1"), since no earlier line is involved. So is one
///    beyond 64 bits (`2^70`): no `seq` after 9223372036854775807 can be stored or compared.
/// 4. `seq_not_increasing` — `seq` ≤ `lastSeq`.
/// 5. `bad_uuid` — `event_id`, then `application_id` (36 characters 8-4-4-4-12, any case).
/// 6. `unknown_type` — not a type of the mode (`approved` in an outbox is `unknown_type`).
/// 7. `bad_timestamp`, then `occurred_in_future` (more than 10 minutes after `now`). Any
///    number of fraction digits is RFC 3339; the instant keeps microseconds (`Timestamp`).
///    Year 0000 is RFC 3339 too: its line goes on to the `data` rules, dated year 0000.
/// 8. The `data` rules of the type: first the shape of every field (`missing_field` /
///    `wrong_type`), then the values. For `submitted` the values are checked in this order:
///    `channel` (`bad_enum`), `child.sex` (`bad_enum`), `child.id_number` (`invalid_id_number`),
///    `id_birth_mismatch`, `not_a_minor`, `guardian.id_number` (`invalid_id_number`),
///    `guardian.relationship` (`bad_enum`), `guardian_not_adult`, `guardian.phone` (`bad_phone`),
///    each document name (`bad_enum`), `missing_document`.
///
/// ## Choices where the spec is silent
/// - Required strings that are names, numbers or addresses must be non-empty; an empty one is
///   `missing_field`. `withdrawn`, `rejected` and `returned` require `reason` to be a string,
///   possibly empty.
/// - `child.birth_date` that is not a real `YYYY-MM-DD` date is `wrong_type`.
/// - An identity number whose birth date is after the date of `occurred_at` is
///   `invalid_id_number` (not a real birth date yet).
/// - Ages are whole years on the calendar date of `occurred_at` in its own offset
///   (`CivilDate.age(on:)`): the child must be under 18, the guardian 18 or older.
/// - `amended`: `base_version` an integer ≥ 1 (`wrong_type` otherwise); `changes` a non-empty
///   object (`missing_field` when empty); any key outside the changeable paths, the child's
///   `child.id_number`, `child.birth_date`, `child.sex` as well as unknown paths, is
///   `immutable_field`; values are type-checked (strings; `documents` an array of document names)
///   and `guardian.relationship` / `guardian.phone` / document names checked as in `submitted`.
///   `missing_document` applies to `submitted` only.
/// - `documents_verified` needs a non-empty `documents` array; an empty one is `missing_field`.
/// - Unknown extra fields (top level or in `data`) are accepted and kept, so that counter
///   software may add information without being quarantined.
/// - Bureau types: `approved` any object; `rejected`/`returned` `{reason: string}`;
///   `card_produced` `{card_number: non-empty string}`; `card_dispatched` `{agency_code}` with a
///   valid agency code (`wrong_type` otherwise). In bureau mode a `seq`, if present, is ignored.
///
/// Details name the field path and what was expected. They never contain an identity number
/// or a phone number in full: such values are masked to their last four characters, and other
/// echoed values are shortened and masked when they contain many digits.
public struct EventLineValidator: Sendable {
    public enum Mode: Sendable, Equatable {
        /// `outbox.jsonl`: agency event types, `seq` required.
        case outbox
        /// `cardsync bureau import`: bureau event types, no `seq`.
        case bureauImport
    }

    /// Lines longer than this many bytes (newline not counted) are `line_too_long`.
    public static let maximumLineBytes = 1_048_576
    /// How far ahead of the syncing machine's clock `occurred_at` may be: 10 minutes.
    public static let futureToleranceMicroseconds: Int64 = 10 * 60 * 1_000_000

    public static let documentNames: [String] = ["birth_certificate", "household_register", "guardian_id", "photo"]
    public static let requiredDocuments: [String] = ["birth_certificate", "household_register", "guardian_id"]
    public static let relationships: [String] = ["father", "mother", "grandparent", "other"]

    public var mode: Mode
    /// The syncing machine's clock.
    public var now: Timestamp

    public init(mode: Mode = .outbox, now: Timestamp) {
        self.mode = mode
        self.now = now
    }

    /// The outcome for one line, with the `seq` it carried.
    public struct Verdict: Sendable, Equatable {
        public var result: Result<QueueEvent, QuarantineReason>
        /// The line's `seq` when it is an integer ≥ 1, whether or not the line passed the
        /// later rules. To follow the spec's "not greater than every earlier `seq` in the file"
        /// to the letter, fold every verdict's `seq` into the `lastSeq` of the next line.
        public var seq: Int64?

        public init(result: Result<QueueEvent, QuarantineReason>, seq: Int64?) {
            self.result = result
            self.seq = seq
        }

        public var event: QueueEvent? { if case .success(let e) = result { return e }; return nil }
        public var reason: QuarantineReason? { if case .failure(let r) = result { return r }; return nil }
    }

    // MARK: Entry points

    /// Validates `line` (the bytes of one line without its `\n`). `lineNumber` is 1-based;
    /// `lastSeq` is the greatest `seq` seen earlier in the file, nil if none.
    public func validate(_ line: UnsafeRawBufferPointer, lineNumber: Int, lastSeq: Int64?)
        -> Result<QueueEvent, QuarantineReason>
    {
        check(line, lineNumber: lineNumber, lastSeq: lastSeq).result
    }

    public func validate(_ line: [UInt8], lineNumber: Int, lastSeq: Int64?) -> Result<QueueEvent, QuarantineReason> {
        line.withUnsafeBytes { validate($0, lineNumber: lineNumber, lastSeq: lastSeq) }
    }

    public func validate(_ line: ArraySlice<UInt8>, lineNumber: Int, lastSeq: Int64?)
        -> Result<QueueEvent, QuarantineReason>
    {
        line.withUnsafeBytes { validate($0, lineNumber: lineNumber, lastSeq: lastSeq) }
    }

    public func check(_ line: [UInt8], lineNumber: Int, lastSeq: Int64?) -> Verdict {
        line.withUnsafeBytes { check($0, lineNumber: lineNumber, lastSeq: lastSeq) }
    }

    public func check(_ line: ArraySlice<UInt8>, lineNumber: Int, lastSeq: Int64?) -> Verdict {
        line.withUnsafeBytes { check($0, lineNumber: lineNumber, lastSeq: lastSeq) }
    }

    public func check(_ line: UnsafeRawBufferPointer, lineNumber: Int, lastSeq: Int64?) -> Verdict {
        var seq: Int64?
        do throws(QuarantineReason) {
            let event = try run(line, lineNumber: lineNumber, lastSeq: lastSeq, seq: &seq)
            return Verdict(result: .success(event), seq: seq)
        } catch {
            return Verdict(result: .failure(error), seq: seq)
        }
    }

    /// `data` written compactly with sorted keys: the canonical form stored as jsonb.
    public static func canonicalDataJSON(_ event: QueueEvent) -> String {
        JSONWriter.string(event.data)
    }

    /// Like `canonicalDataJSON(_:)`, as UTF-8 bytes.
    public static func canonicalDataBytes(_ event: QueueEvent) -> [UInt8] {
        JSONWriter.bytes(event.data)
    }

    // MARK: Top level

    private func run(_ line: UnsafeRawBufferPointer, lineNumber: Int, lastSeq: Int64?, seq seqOut: inout Int64?)
        throws(QuarantineReason) -> QueueEvent
    {
        guard line.count <= Self.maximumLineBytes else {
            throw QuarantineReason(.lineTooLong,
                                   "the line is \(line.count) bytes long; the limit is 1 MiB (1048576 bytes)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            if error.isInvalidUTF8 {
                throw QuarantineReason(.malformedJSON, "not valid UTF-8 (first bad byte at offset \(error.offset))")
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                throw QuarantineReason(.malformedJSON, "not a JSON object: the line is empty")
            }
            if line.count >= 3, line[0] == 0xEF, line[1] == 0xBB, line[2] == 0xBF {
                throw QuarantineReason(.malformedJSON,
                                       "not JSON: the line starts with a byte order mark (U+FEFF); write the file as UTF-8 without BOM")
            }
            throw QuarantineReason(.malformedJSON, "not JSON: \(error)")
        }
        guard case .object(let top) = value else {
            throw QuarantineReason(.malformedJSON, "not a JSON object (the line holds a JSON \(value.typeName))")
        }

        // 3. Presence and JSON types of the top-level fields.
        var seq: Int64 = 0
        if mode == .outbox {
            let raw = try Self.field(top, "seq", path: "seq")
            guard case .int(let s) = raw else {
                throw QuarantineReason(.wrongType, "seq: expected an integer ≥ 1, found \(Self.describeNumber(raw))")
            }
            guard s >= 1 else {
                throw QuarantineReason(.wrongType, "seq: expected an integer ≥ 1, found \(s)")
            }
            seq = s
            seqOut = s
        }
        let eventIDText = try Self.string(top, "event_id", path: "event_id")
        let applicationIDText = try Self.string(top, "application_id", path: "application_id")
        let typeText = try Self.string(top, "type", path: "type")
        let occurredText = try Self.string(top, "occurred_at", path: "occurred_at")
        let data = try Self.object(top, "data", path: "data")

        // 4. seq order.
        if mode == .outbox, let last = lastSeq, seq <= last {
            throw QuarantineReason(.seqNotIncreasing,
                                   "seq \(seq) is not greater than \(last), the greatest seq earlier in the file")
        }
        // 5. UUIDs.
        guard let eventID = Self.parseUUID(eventIDText) else {
            throw QuarantineReason(.badUUID, "event_id: expected a UUID (8-4-4-4-12 hex digits), found \(Self.echo(eventIDText))")
        }
        guard let applicationID = Self.parseUUID(applicationIDText) else {
            throw QuarantineReason(.badUUID,
                                   "application_id: expected a UUID (8-4-4-4-12 hex digits), found \(Self.echo(applicationIDText))")
        }
        // 6. Type.
        let allowed = mode == .outbox ? EventType.agencyTypes : EventType.bureauTypes
        guard let type = EventType(rawValue: typeText), allowed.contains(type) else {
            let kind = mode == .outbox ? "an agency event type" : "a bureau event type"
            throw QuarantineReason(.unknownType,
                                   "type: \(Self.echo(typeText)) is not \(kind) (\(allowed.map(\.rawValue).joined(separator: ", ")))")
        }
        // 7. Time.
        guard let occurredAt = Timestamp(rfc3339: occurredText) else {
            throw QuarantineReason(.badTimestamp,
                                   "occurred_at: expected an RFC 3339 timestamp with an offset such as 2026-10-03T09:15:27+08:00, found \(Self.echo(occurredText))")
        }
        let ahead = occurredAt.microseconds - now.microseconds
        if ahead > Self.futureToleranceMicroseconds {
            throw QuarantineReason(.occurredInFuture,
                                   "occurred_at \(occurredText) is \(Self.durationText(ahead)) ahead of this machine's clock (\(now.rfc3339)); at most 10 minutes are allowed")
        }
        // 8. data.
        // The date of occurred_at as written. Built from its day number, which any year of
        // RFC 3339 has: `CivilDate(year:month:day:)` refuses year 0000, and a stand-in date
        // would check ages against the wrong day.
        let date = occurredAt.civilDate(offsetSeconds: occurredAt.offsetSeconds)
        let occurredDate = CivilDate(dayNumber: Timestamp.daysFromCivil(year: date.year, month: date.month, day: date.day))
        switch type {
        case .submitted: try checkSubmitted(data, on: occurredDate)
        case .amended: try checkAmended(data)
        case .documentsVerified: try checkDocumentsVerified(data)
        case .withdrawn: _ = try Self.string(data, "reason", path: "reason")
        case .cardIssued: try checkCardIssued(data)
        case .approved: break
        case .rejected, .returned: _ = try Self.string(data, "reason", path: "reason")
        case .cardProduced: _ = try Self.string(data, "card_number", path: "card_number", nonEmpty: true)
        case .cardDispatched:
            let code = try Self.string(data, "agency_code", path: "agency_code")
            guard AgencyCode.isValid(code) else {
                throw QuarantineReason(.wrongType,
                                       "agency_code: expected an agency code (A-Z, 0-9 and '-', 2 to 32 characters), found \(Self.echo(code))")
            }
        case .conflictOpened, .conflictResolved:
            break // not reachable: not allowed in either mode
        }
        // 9. The central database stores `data` as jsonb, which cannot hold U+0000: such a line
        // would fail its whole batch on every sync and block every line after it.
        if Self.mayHoldNUL(line) && Self.containsNUL(.object(data)) {
            throw QuarantineReason(.malformedJSON,
                                   "data holds a NUL character (\\u0000), which the central database cannot store")
        }
        return QueueEvent(seq: seq, eventID: eventID, applicationID: applicationID, type: type,
                          occurredAt: occurredAt, data: .object(data), lineNumber: lineNumber)
    }

    // MARK: data per type

    private func checkSubmitted(_ data: [String: JSONValue], on occurredDate: CivilDate) throws(QuarantineReason) {
        // Shape first.
        let channel = try Self.string(data, "channel", path: "channel")
        let child = try Self.object(data, "child", path: "child")
        _ = try Self.string(child, "name", path: "child.name", nonEmpty: true)
        let childID = try Self.string(child, "id_number", path: "child.id_number")
        let birthText = try Self.string(child, "birth_date", path: "child.birth_date")
        guard let birthDate = CivilDate(iso: birthText) else {
            throw QuarantineReason(.wrongType, "child.birth_date: expected a real calendar date written YYYY-MM-DD")
        }
        let sexText = try Self.string(child, "sex", path: "child.sex")
        let guardian = try Self.object(data, "guardian", path: "guardian")
        _ = try Self.string(guardian, "name", path: "guardian.name", nonEmpty: true)
        let guardianID = try Self.string(guardian, "id_number", path: "guardian.id_number")
        let relationship = try Self.string(guardian, "relationship", path: "guardian.relationship")
        let phone = try Self.string(guardian, "phone", path: "guardian.phone")
        let household = try Self.object(data, "household", path: "household")
        _ = try Self.string(household, "register_number", path: "household.register_number", nonEmpty: true)
        _ = try Self.string(household, "address", path: "household.address", nonEmpty: true)
        let documents = try Self.stringArray(data, "documents", path: "documents")

        // Then values.
        guard AgencyChannel(rawValue: channel) != nil else {
            throw QuarantineReason(.badEnum, "channel: expected counter or online, found \(Self.echo(channel))")
        }
        guard let sex = Sex(rawValue: sexText) else {
            throw QuarantineReason(.badEnum, "child.sex: expected M or F, found \(Self.echo(sexText))")
        }
        let childNumber = try Self.identityNumber(childID, path: "child.id_number", on: occurredDate)
        if childNumber.birthDate != birthDate {
            throw QuarantineReason(.idBirthMismatch,
                                   "child.birth_date differs from the birth date in child.id_number (characters 7-14 of \(childNumber.masked))")
        }
        if childNumber.sex != sex {
            throw QuarantineReason(.idBirthMismatch,
                                   "child.sex is \(sex.rawValue) but the 17th digit of child.id_number (\(childNumber.masked)) says \(childNumber.sex.rawValue) (odd = M, even = F)")
        }
        let childAge = birthDate.age(on: occurredDate)
        if childAge >= 18 {
            throw QuarantineReason(.notAMinor,
                                   "the child is \(childAge) years old on \(occurredDate) (the date of occurred_at); a child must be under 18")
        }
        let guardianNumber = try Self.identityNumber(guardianID, path: "guardian.id_number", on: occurredDate)
        guard Self.relationships.contains(relationship) else {
            throw QuarantineReason(.badEnum,
                                   "guardian.relationship: expected father, mother, grandparent or other, found \(Self.echo(relationship))")
        }
        let guardianAge = guardianNumber.birthDate.age(on: occurredDate)
        if guardianAge < 18 {
            throw QuarantineReason(.guardianNotAdult,
                                   "the guardian is \(guardianAge) years old on \(occurredDate) (the date of occurred_at, birth date from guardian.id_number); a guardian must be 18 or older")
        }
        try Self.checkPhone(phone, path: "guardian.phone")
        try Self.checkDocumentNames(documents, path: "documents")
        let missing = Self.requiredDocuments.filter { !documents.contains($0) }
        if !missing.isEmpty {
            throw QuarantineReason(.missingDocument,
                                   "documents: a submitted application needs birth_certificate, household_register and guardian_id; missing \(missing.joined(separator: ", "))")
        }
    }

    private func checkAmended(_ data: [String: JSONValue]) throws(QuarantineReason) {
        let base = try Self.field(data, "base_version", path: "base_version")
        guard case .int(let version) = base, version >= 1 else {
            throw QuarantineReason(.wrongType, "base_version: expected an integer ≥ 1, found \(Self.describeNumber(base))")
        }
        let changes = try Self.object(data, "changes", path: "changes")
        guard !changes.isEmpty else {
            throw QuarantineReason(.missingField, "changes: an amendment must change at least one path")
        }
        // Immutable or unknown paths first, in a stable order.
        for key in changes.keys.sorted() where !AmendablePath.allSet.contains(key) {
            throw QuarantineReason(.immutableField,
                                   "changes: \(Self.echo(key)) cannot be amended; changeable paths are \(AmendablePath.all.joined(separator: ", "))")
        }
        // Then each value, in the spec's order.
        for path in AmendablePath.all {
            guard let value = changes[path] else { continue }
            let where_ = "changes[\"\(path)\"]"
            if path == "documents" {
                guard case .array(let items) = value else {
                    throw QuarantineReason(.wrongType, "\(where_): expected an array of document names, found \(Self.describe(value))")
                }
                var names: [String] = []
                for (k, item) in items.enumerated() {
                    guard case .string(let s) = item else {
                        throw QuarantineReason(.wrongType, "\(where_)[\(k)]: expected a string, found \(Self.describe(item))")
                    }
                    names.append(s)
                }
                try Self.checkDocumentNames(names, path: where_)
                continue
            }
            guard case .string(let text) = value else {
                throw QuarantineReason(.wrongType, "\(where_): expected a string, found \(Self.describe(value))")
            }
            switch path {
            case "guardian.relationship":
                guard Self.relationships.contains(text) else {
                    throw QuarantineReason(.badEnum,
                                           "\(where_): expected father, mother, grandparent or other, found \(Self.echo(text))")
                }
            case "guardian.phone":
                try Self.checkPhone(text, path: where_)
            default:
                guard !text.isEmpty else {
                    throw QuarantineReason(.missingField, "\(where_): must not be empty")
                }
            }
        }
    }

    private func checkDocumentsVerified(_ data: [String: JSONValue]) throws(QuarantineReason) {
        let documents = try Self.stringArray(data, "documents", path: "documents")
        guard !documents.isEmpty else {
            throw QuarantineReason(.missingField, "documents: expected at least one document name")
        }
        try Self.checkDocumentNames(documents, path: "documents")
    }

    private func checkCardIssued(_ data: [String: JSONValue]) throws(QuarantineReason) {
        _ = try Self.string(data, "card_number", path: "card_number", nonEmpty: true)
        let collectedBy = try Self.object(data, "collected_by", path: "collected_by")
        _ = try Self.string(collectedBy, "name", path: "collected_by.name", nonEmpty: true)
        let relationship = try Self.string(collectedBy, "relationship", path: "collected_by.relationship")
        guard Self.relationships.contains(relationship) else {
            throw QuarantineReason(.badEnum,
                                   "collected_by.relationship: expected father, mother, grandparent or other, found \(Self.echo(relationship))")
        }
    }

    // MARK: Value rules

    private static func identityNumber(_ text: String, path: String, on occurredDate: CivilDate)
        throws(QuarantineReason) -> IdentityNumber
    {
        switch IdentityNumber.validate(text) {
        case .failure(let why):
            throw QuarantineReason(.invalidIDNumber, "\(path): \(why) (\(PersonalDataMask.identityNumber(text)))")
        case .success(let number):
            if number.birthDate > occurredDate {
                throw QuarantineReason(.invalidIDNumber,
                                       "\(path): the birth date in it (characters 7-14) is after the date of occurred_at (\(number.masked))")
            }
            return number
        }
    }

    private static func checkPhone(_ phone: String, path: String) throws(QuarantineReason) {
        guard PhoneNumber.isValid(phone) else {
            throw QuarantineReason(.badPhone,
                                   "\(path): expected a mainland mobile number (11 digits starting 13-19) or a landline (0, a 2-3 digit area code, an optional '-', 7-8 digits), found \(PhoneNumber.masked(String(phone.prefix(40))))")
        }
    }

    private static func checkDocumentNames(_ names: [String], path: String) throws(QuarantineReason) {
        for (k, name) in names.enumerated() where !documentNames.contains(name) {
            throw QuarantineReason(.badEnum,
                                   "\(path)[\(k)]: expected one of \(documentNames.joined(separator: ", ")), found \(echo(name))")
        }
    }

    // MARK: Field access

    private static func field(_ object: [String: JSONValue], _ key: String, path: String)
        throws(QuarantineReason) -> JSONValue
    {
        guard let value = object[key], !value.isNull else {
            throw QuarantineReason(.missingField, "\(path) is missing")
        }
        return value
    }

    private static func string(_ object: [String: JSONValue], _ key: String, path: String, nonEmpty: Bool = false)
        throws(QuarantineReason) -> String
    {
        let value = try field(object, key, path: path)
        guard case .string(let s) = value else {
            throw QuarantineReason(.wrongType, "\(path): expected a string, found \(describe(value))")
        }
        if nonEmpty && s.isEmpty {
            throw QuarantineReason(.missingField, "\(path) is empty")
        }
        return s
    }

    private static func object(_ object: [String: JSONValue], _ key: String, path: String)
        throws(QuarantineReason) -> [String: JSONValue]
    {
        let value = try field(object, key, path: path)
        guard case .object(let o) = value else {
            throw QuarantineReason(.wrongType, "\(path): expected an object, found \(describe(value))")
        }
        return o
    }

    private static func stringArray(_ object: [String: JSONValue], _ key: String, path: String)
        throws(QuarantineReason) -> [String]
    {
        let value = try field(object, key, path: path)
        guard case .array(let items) = value else {
            throw QuarantineReason(.wrongType, "\(path): expected an array of strings, found \(describe(value))")
        }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (k, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw QuarantineReason(.wrongType, "\(path)[\(k)]: expected a string, found \(describe(item))")
            }
            out.append(s)
        }
        return out
    }

    /// Whether a key or string anywhere in `value` holds U+0000.
    /// Whether the line's text could decode to a string holding U+0000: only a raw NUL byte or
    /// the escape `\u0000` can give one. Most lines hold neither, and scanning their bytes is
    /// much cheaper than walking the parsed value.
    static func mayHoldNUL(_ line: UnsafeRawBufferPointer) -> Bool {
        let n = line.count
        var k = 0
        while k < n {
            let c = line[k]
            if c == 0 { return true }
            if c == 0x5C, k + 5 < n, line[k + 1] == UInt8(ascii: "u"),
               line[k + 2] == 0x30, line[k + 3] == 0x30, line[k + 4] == 0x30, line[k + 5] == 0x30 {
                return true
            }
            // An escaped backslash is skipped whole, so that `\\u0000` (a backslash, then
            // the text u0000) is not taken for the escape.
            k += c == 0x5C ? 2 : 1
        }
        return false
    }

    static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let s): return s.utf8.contains(0)
        case .array(let items): return items.contains(where: containsNUL)
        case .object(let o): return o.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }

    // MARK: Text helpers

    /// "a number", "a string", ... without the value itself (which may be personal data).
    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number with a fraction or exponent"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Like `describe(_:)`, but says when a number is a whole one too large for 64 bits
    /// (`seq: 1180591620717411303424`), which is not "a number with a fraction".
    static func describeNumber(_ value: JSONValue) -> String {
        if case .double(let d) = value, d.isFinite, d == d.rounded(), d.magnitude >= 0x1p63 {
            return "a whole number too large for 64 bits (at most 9223372036854775807)"
        }
        return describe(value)
    }

    /// A value quoted for a detail, masked by `PersonalDataMask` when it might be personal; a
    /// UUID or a timestamp is not, and stays readable.
    static func echo(_ text: String) -> String {
        PersonalDataMask.quotedForMessage(text) { parseUUID($0) != nil || Timestamp(rfc3339: $0) != nil }
    }

    static func durationText(_ microseconds: Int64) -> String {
        let seconds = microseconds / 1_000_000
        if seconds < 3600 { return "\(seconds / 60) minutes \(seconds % 60) seconds" }
        if seconds < 86_400 * 2 { return "\(seconds / 3600) hours \(seconds % 3600 / 60) minutes" }
        return "\(seconds / 86_400) days"
    }

    /// A UUID written 8-4-4-4-12 with hex digits of any case.
    public static func parseUUID(_ text: String) -> UUID? {
        guard text.utf8.count == 36 else { return nil }
        var copy = text
        return copy.withUTF8 { u -> UUID? in
            var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let ok = withUnsafeMutableBytes(of: &value) { out -> Bool in
                var n = 0
                var k = 0
                while k < 36 {
                    if k == 8 || k == 13 || k == 18 || k == 23 {
                        guard u[k] == 0x2D else { return false }
                        k += 1
                        continue
                    }
                    guard let high = hexValue(u[k]), let low = hexValue(u[k + 1]) else { return false }
                    out[n] = high << 4 | low
                    n += 1
                    k += 2
                }
                return true
            }
            return ok ? UUID(uuid: value) : nil
        }
    }

    @inline(__always)
    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
