import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// Outbox lines an attacker, a broken vendor program or a damaged disk can produce. The spec's
/// Validation section says a line that fails a rule is quarantined "and the lines after it still
/// sync": each must be accepted or get its code. A Swift runtime trap instead (a range with its
/// bounds swapped, an overflow, a stack overflow) would stop every sync of the queue at that line.
enum HostileLines {
    typealias F = ValidationFixture

    struct Case {
        var name: String
        var bytes: [UInt8]
        /// nil: the line is valid.
        var expected: QuarantineCode?
        /// Whether the line keeps the `seq` the caller gave it (false: its `seq` is the attack).
        var ownSeq = true
    }

    static let maxSeq = "9223372036854775807"

    /// `{"seq":SEQ,...}` with the fixture's fields; `data` and `occurred_at` as JSON text.
    static func text(seq: String, eventID: UUID, app: UUID, type: String, occurredAt: String = #""\#(F.occurredAt)""#,
                     data: String? = nil) -> String
    {
        let dataText = data ?? String(decoding: JSONWriter.bytes(F.data(for: type)), as: UTF8.self)
        return #"{"seq":\#(seq),"event_id":"\#(eventID.lowercased)","application_id":"\#(app.lowercased)","type":"\#(type)","occurred_at":\#(occurredAt),"data":\#(dataText)}"#
    }

    static func json(_ value: JSONValue) -> String { String(decoding: JSONWriter.bytes(value), as: UTF8.self) }

    /// `submitted` data for a child and a guardian born on the given days (valid numbers).
    static func submittedData(childBorn: String, guardianBorn: String) -> String {
        json(F.submittedData
            .setting("child.id_number", to: .string(F.idNumber(birth: childBorn, sequence: 1)))
            .setting("child.birth_date", to: .string(childBorn))
            .setting("guardian.id_number", to: .string(F.idNumber(birth: guardianBorn, sequence: 11))))
    }

    /// Every hostile line, each with its own event and application id; `seq` is the line's
    /// `seq` where the attack is elsewhere.
    static func cases(seq: Int64, app: UUID = UUID()) -> [Case] {
        let s = String(seq)
        func line(_ seqText: String = s, type: String = "withdrawn", occurredAt: String? = nil, data: String? = nil,
                  eventID: UUID = UUID(), application: UUID = UUID()) -> String {
            text(seq: seqText, eventID: eventID, app: application, type: type,
                 occurredAt: occurredAt.map { #""\#($0)""# } ?? #""\#(F.occurredAt)""#, data: data)
        }
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        let nested = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let manyKeys = "{" + (0..<50_000).map { #""k\#($0)":0"# }.joined(separator: ",") + #","reason":"搬家"}"#
        let withdrawn = line()
        let typeAt = withdrawn.range(of: #""type":"withdrawn","#)!
        let fullWidthChild = json(F.submittedData.setting("child.id_number", to: "４３０１０２２０１９０３１５００１Ｘ"))
        let arabicGuardian = json(F.submittedData.setting("guardian.id_number", to: .string(String(repeating: "\u{0664}", count: 18))))
        let fullWidthPhone = json(F.submittedData.setting("guardian.phone", to: "１３８１２３４５６７８"))
        let badBirth = json(F.submittedData.setting("child.birth_date", to: "2019-02-30"))
        return [
            Case(name: "seq 1e400", bytes: bytes(line("1e400")), expected: .malformedJSON, ownSeq: false),
            Case(name: "seq 2^70", bytes: bytes(line("1180591620717411303424")), expected: .wrongType, ownSeq: false),
            Case(name: "seq 2^63", bytes: bytes(line("9223372036854775808")), expected: .wrongType, ownSeq: false),
            Case(name: "seq of 1000 digits", bytes: bytes(line(String(repeating: "7", count: 1000))), expected: .malformedJSON,
                 ownSeq: false),
            Case(name: "seq -1", bytes: bytes(line("-1")), expected: .wrongType, ownSeq: false),
            Case(name: "seq 0", bytes: bytes(line("0")), expected: .wrongType, ownSeq: false),
            Case(name: "seq 1.5", bytes: bytes(line("1.5")), expected: .wrongType, ownSeq: false),
            Case(name: "seq \"17\"", bytes: bytes(line(#""17""#)), expected: .wrongType, ownSeq: false),
            Case(name: "7 fraction digits", bytes: bytes(line(type: "submitted", occurredAt: "2026-10-03T09:15:27.1234567+08:00",
                                                              application: app)), expected: nil),
            Case(name: "9 fraction digits", bytes: bytes(line(type: "documents_verified", occurredAt: "2026-10-03T09:16:27.123456789+08:00",
                                                              application: app)), expected: nil),
            Case(name: "100 fraction digits", bytes: bytes(line(occurredAt: "2026-10-03T09:15:27." + String(repeating: "3", count: 100) + "+08:00")),
                 expected: nil),
            Case(name: "year 0000, child born 1960", bytes: bytes(line(type: "submitted", occurredAt: "0000-06-01T09:00:00+08:00",
                                                                        data: submittedData(childBorn: "1960-05-01", guardianBorn: "1930-01-01"))),
                 expected: .invalidIDNumber),
            Case(name: "year 0000 withdrawn", bytes: bytes(line(occurredAt: "0000-01-01T00:00:00+08:00")), expected: nil),
            Case(name: "year 9999", bytes: bytes(line(occurredAt: "9999-12-31T23:59:59.9999999Z")), expected: .occurredInFuture),
            Case(name: "offset +99:99", bytes: bytes(line(occurredAt: "2026-10-03T09:15:27+99:99")), expected: .badTimestamp),
            Case(name: "offset -24:00", bytes: bytes(line(occurredAt: "2026-10-03T09:15:27-24:00")), expected: .badTimestamp),
            Case(name: "month 13", bytes: bytes(line(occurredAt: "2026-13-03T09:15:27+08:00")), expected: .badTimestamp),
            Case(name: "10,000 nested arrays in data", bytes: bytes(line(data: #"{"reason":"x","extra":"# + nested + "}")),
                 expected: .malformedJSON),
            Case(name: "10,000 nested arrays as the line", bytes: bytes(nested), expected: .malformedJSON),
            Case(name: "a 1.5 MiB line", bytes: bytes(line(data: #"{"reason":""# + String(repeating: "长", count: 524_288) + #""}"#)),
                 expected: .lineTooLong),
            Case(name: "invalid UTF-8", bytes: bytes(#"{"seq":\#(s),"note":""#) + [0xC3, 0x28, 0xFF] + bytes(#""}"#),
                 expected: .malformedJSON),
            Case(name: "an encoded surrogate (ED A0 80)", bytes: bytes(#"{"seq":\#(s),"note":""#) + [0xED, 0xA0, 0x80] + bytes(#""}"#),
                 expected: .malformedJSON),
            Case(name: "lone surrogate escape", bytes: bytes(line(data: #"{"reason":"\ud800"}"#)), expected: .malformedJSON),
            Case(name: "lone low surrogate escape", bytes: bytes(line(data: #"{"reason":"x\udfff"}"#)), expected: .malformedJSON),
            Case(name: "BOM at the start", bytes: [0xEF, 0xBB, 0xBF] + bytes(line()), expected: .malformedJSON),
            Case(name: "CRLF ending", bytes: bytes(line(type: "documents_verified", application: app) + "\r"), expected: nil),
            Case(name: "duplicate keys", bytes: bytes(String(withdrawn[..<typeAt.upperBound]) + #""type":"withdrawn","#
                                                      + String(withdrawn[typeAt.upperBound...])), expected: .malformedJSON),
            Case(name: "NUL escape in data", bytes: bytes(line(data: #"{"reason":"a\u0000b"}"#)), expected: .malformedJSON),
            Case(name: "id_number in full-width digits", bytes: bytes(line(type: "submitted", data: fullWidthChild)),
                 expected: .invalidIDNumber),
            Case(name: "id_number in Arabic-Indic digits", bytes: bytes(line(type: "submitted", data: arabicGuardian)),
                 expected: .invalidIDNumber),
            Case(name: "phone in full-width digits", bytes: bytes(line(type: "submitted", data: fullWidthPhone)), expected: .badPhone),
            Case(name: "birth date 2019-02-30", bytes: bytes(line(type: "submitted", data: badBirth)), expected: .wrongType),
            Case(name: "event_id a timestamp with 7 fraction digits",
                 bytes: bytes(line().replacingOccurrences(of: #""event_id":""#, with: #""event_id":"2026-10-03T09:15:27.1234567+08:00","x":""#)),
                 expected: .badUUID),
            Case(name: "type a timestamp with 7 fraction digits", bytes: bytes(line(type: "2026-10-03T09:15:27.1234567+08:00")),
                 expected: .unknownType),
            Case(name: "base_version 2^70", bytes: bytes(line(type: "amended", data: #"{"base_version":1180591620717411303424,"changes":{"guardian.phone":"13900001111"}}"#)),
                 expected: .wrongType),
            Case(name: "50,000 extra keys in data", bytes: bytes(line(data: manyKeys)), expected: nil),
            Case(name: "an empty line", bytes: [], expected: .malformedJSON),
            Case(name: "a lone CR", bytes: [0x0D], expected: .malformedJSON),
            Case(name: "the largest seq", bytes: bytes(line(maxSeq)), expected: nil, ownSeq: false),
        ]
    }
}

@Suite("Validation: every hostile line is accepted or gets its quarantine code")
struct HostileLineValidationTests {
    typealias F = ValidationFixture

    @Test("each hostile line, validated alone, gets the expected code (or passes)")
    func eachLineGetsItsCode() throws {
        let validator = EventLineValidator(mode: .outbox, now: F.now)
        for c in HostileLines.cases(seq: 17) {
            let verdict = validator.check(c.bytes, lineNumber: 3, lastSeq: 16)
            #expect(verdict.reason?.code == c.expected, "\(c.name): \(verdict.reason?.detail ?? "accepted")")
        }
    }

    @Test("details say what is wrong: a byte order mark, a seq beyond 64 bits, the depth limit")
    func detailsNameTheCause() throws {
        let validator = EventLineValidator(mode: .outbox, now: F.now)
        func detail(_ name: String) -> String {
            let c = HostileLines.cases(seq: 17).first { $0.name == name }!
            return validator.check(c.bytes, lineNumber: 1, lastSeq: nil).reason?.detail ?? "accepted"
        }
        #expect(detail("BOM at the start").contains("byte order mark"))
        #expect(detail("seq 2^70").contains("too large for 64 bits"))
        #expect(detail("base_version 2^70").contains("too large for 64 bits"))
        #expect(detail("seq 1.5").contains("fraction"))
        #expect(detail("10,000 nested arrays in data").contains("nested deeper than 64 levels"))
        #expect(detail("seq 1e400").contains("number out of range"))
        #expect(detail("id_number in full-width digits").contains("ASCII digits"))
        // Masked, as every detail about an identity number.
        #expect(!detail("id_number in full-width digits").contains("４３０１０２２０１９"))
    }

    @Test("occurred_at with more than six fraction digits: kept to the microsecond, 7th digit rounded half up")
    func manyFractionDigitsAreAccepted() throws {
        let validator = EventLineValidator(mode: .outbox, now: F.now)
        let cases = HostileLines.cases(seq: 17)
        let seven = try validator.validate(cases.first { $0.name == "7 fraction digits" }!.bytes, lineNumber: 1, lastSeq: nil).get()
        #expect(seven.occurredAt.microseconds == Timestamp(rfc3339: "2026-10-03T09:15:27.123457+08:00")!.microseconds)
        #expect(seven.occurredAt.offsetSeconds == 8 * 3600)
        let hundred = try validator.validate(cases.first { $0.name == "100 fraction digits" }!.bytes, lineNumber: 1, lastSeq: nil).get()
        #expect(hundred.occurredAt.rfc3339 == "2026-10-03T09:15:27.333333+08:00")
    }

    @Test("year 0000 is checked as year 0000: ages are not computed on a stand-in date")
    func yearZeroIsNotReplacedByAnotherDate() throws {
        let validator = EventLineValidator(mode: .outbox, now: F.now)
        let c = HostileLines.cases(seq: 17).first { $0.name == "year 0000, child born 1960" }!
        let reason = try #require(validator.check(c.bytes, lineNumber: 1, lastSeq: nil).reason)
        #expect(reason.code == .invalidIDNumber)
        #expect(reason.detail.contains("after the date of occurred_at"))
    }

    @Test("queue append takes a line with nine fraction digits, and the appended line validates as sync reads it")
    func appendAcceptsManyFractionDigits() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        var value = F.event(type: "withdrawn", seq: nil)
        value = value.setting("occurred_at", to: "2026-10-03T09:15:27.123456789+08:00")
        let input = JSONWriter.bytes(value) + [0x0A]
            + JSONWriter.bytes(F.event(type: "documents_verified", seq: nil)
                .setting("event_id", to: .string(UUID().lowercased))
                .setting("occurred_at", to: "2026-10-03T09:15:27.9999995+08:00"))
        let report = try QueueAppender(directory: queue, lockTimeout: nil, now: { F.now }).append(.bytes(input))
        #expect(report.refused.isEmpty, "\(report.refused)")
        #expect(report.appended == 2)
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        let validator = EventLineValidator(mode: .outbox, now: F.now)
        let first = try validator.validate(lines[0].bytes, lineNumber: 1, lastSeq: nil).get()
        let second = try validator.validate(lines[1].bytes, lineNumber: 2, lastSeq: 1).get()
        #expect(first.occurredAt.rfc3339 == "2026-10-03T09:15:27.123457+08:00")
        #expect(second.occurredAt.rfc3339 == "2026-10-03T09:15:28+08:00")
        // The line is kept byte for byte (with seq inserted): the nine digits stay in the outbox.
        #expect(String(decoding: lines[0].bytes, as: UTF8.self).contains("27.123456789+08:00"))
    }

    @Test("queue append refuses each hostile line with its code and appends the valid ones")
    func appendRefusesHostileLines() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        // The appender assigns seq itself: attacks on seq are replaced, so leave them out here.
        let cases = HostileLines.cases(seq: 1).filter { $0.ownSeq && !$0.bytes.isEmpty && $0.bytes != [0x0D] }
        var input: [UInt8] = []
        for c in cases { input += c.bytes + [0x0A] }
        let report = try QueueAppender(directory: queue, lockTimeout: nil, now: { F.now }).append(.bytes(input))
        #expect(report.appended == cases.filter { $0.expected == nil }.count)
        let refused = Dictionary(uniqueKeysWithValues: report.refused.map { ($0.inputLine, $0.error) })
        for (k, c) in cases.enumerated() {
            #expect(refused[k + 1] == c.expected?.rawValue, "\(c.name)")
        }
    }

    @Test("queue append drops a byte order mark at the start of its input, and refuses one anywhere else")
    func appendDropsALeadingBOM() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let input = [0xEF, 0xBB, 0xBF] + outboxLine(seq: nil) + [0x0D, 0x0A] + [0xEF, 0xBB, 0xBF] + outboxLine(seq: nil)
        let report = try QueueAppender(directory: queue, lockTimeout: nil, now: { F.now }).append(.bytes(input))
        #expect(report.appended == 1)
        #expect(report.refused.map(\.inputLine) == [2])
        #expect(report.refused.first?.detail.contains("byte order mark") == true)
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        #expect(lines.first?.bytes.starts(with: Array(#"{"seq":1,"#.utf8)) == true)
    }

    @Test("an outbox whose last seq is 9223372036854775807 makes queue append fail clearly, not trap")
    func appendAfterTheLargestSeqIsAClearError() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let c = HostileLines.cases(seq: 1).first { $0.name == "the largest seq" }!
        try scratch.append(queue.outboxFile, c.bytes + [0x0A])
        do {
            _ = try QueueAppender(directory: queue, lockTimeout: nil, now: { F.now }).append(.bytes(outboxLine(seq: nil)))
            Issue.record("appended after the largest seq")
        } catch {
            #expect(error.message.contains("9223372036854775807"), "\(error.message)")
        }
        #expect(try OutboxReader(url: queue.outboxFile).readAll().count == 1)
    }

    @Test("queue append ignores seqs below 1 at the end of the outbox instead of numbering after them")
    func appendIgnoresNegativeSeqsAtTheEnd() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        try scratch.append(queue.outboxFile, Array(#"{"seq":-50,"note":"vendor bug"}"#.utf8) + [0x0A])
        #expect(try QueueAppender.greatestSeq(in: queue.outboxFile) == nil)
        let report = try QueueAppender(directory: queue, lockTimeout: nil, now: { F.now }).append(.bytes(outboxLine(seq: nil)))
        #expect(report.appended == 1)
        #expect(report.firstSeq == 1)
    }

    @Test("a negative position in state.json is a bad-state error, not a trap")
    func negativeCheckpointPositionIsAnError() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        for (offset, line) in [(Int64(-1), 0), (0, -3)] {
            do {
                _ = try OutboxReader(url: queue.outboxFile, startOffset: offset, startLine: line)
                Issue.record("opened at \(offset), line \(line)")
            } catch {
                #expect(error.code == .badState)
                #expect(error.message.contains("never negative"))
            }
        }
    }

    @Test("a hostile agency.json is a bad agency file, not a trap")
    func hostileAgencyFile() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let nested = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let cases: [([UInt8], String)] = [
            (Array(nested.utf8), "nested deeper"),
            ([0xEF, 0xBB, 0xBF] + Array(#"{"format":"cardsync.queue.v1","agency":{"code":"CS-FR-001","name":"x"}}"#.utf8), "not a valid agency file"),
            (Array(#"{"format":"cardsync.queue.v1","agency":{"code":"CS-FR-001","name":"x\u0000y"}}"#.utf8), "NUL"),
            (Array(#"{"format":"cardsync.queue.v1","agency":{"code":"CS-FR-001","name":"x","district":"a\u0000"}}"#.utf8), "NUL"),
            (Array(#"{"format":"cardsync.queue.v1","agency":{"code":"CS-FR-001","name":"\ud800"}}"#.utf8), "not a valid agency file"),
            (Array(#"{"format":"cardsync.queue.v1","agency":{"code":"CS-FR-001","name":"x","channel":1e400}}"#.utf8), "not a valid agency file"),
            (Array(#"{"format":"cardsync.queue.v1","agency":"#.utf8) + [UInt8](repeating: 0x20, count: 2 << 20) + Array("{}}".utf8), "MiB"),
        ]
        for (bytes, mention) in cases {
            try scratch.write(queue.agencyFile, bytes)
            do {
                _ = try queue.readAgency()
                Issue.record("read a hostile agency.json mentioning \(mention)")
            } catch {
                #expect(error.code == .badAgencyFile)
                #expect(error.message.contains(mention), "\(error.message)")
            }
        }
    }
}

@Suite("Sync: hostile lines are quarantined with their code and the lines after them still sync")
struct HostileLineSyncTests {
    @Test("an outbox of hostile lines syncs: each bad line quarantined with its code, every valid one in the ledger")
    func hostileOutboxSyncs() throws {
        let world = try SyncWorld()
        let queue = try world.queue()
        // seq = line number, except where seq is the attack; the largest seq goes last.
        var cases = HostileLines.cases(seq: 0).filter { $0.name != "the largest seq" }
        cases = cases.enumerated().map { k, c in
            var c = c
            if c.ownSeq { c.bytes = c.bytes.replacingFirst(Array(#"{"seq":0,"#.utf8), with: Array(#"{"seq":\#(k + 1),"#.utf8)) }
            return c
        }
        cases += HostileLines.cases(seq: 0).filter { $0.name == "the largest seq" }
        var outbox: [UInt8] = []
        for c in cases { outbox += c.bytes + [0x0A] }
        try Data(outbox).write(to: queue.outboxFile)

        let result = try world.sync(queue, batchSize: 7)
        let bad = cases.enumerated().filter { $0.element.expected != nil }
        #expect(result.quarantined == bad.count)
        let quarantined = try QueueFiles.quarantine(queue)
        let codes = Dictionary(uniqueKeysWithValues: quarantined.map { ($0.lineNumber, $0.error) })
        for (k, c) in cases.enumerated() {
            #expect(codes[k + 1] == c.expected?.rawValue, "line \(k + 1), \(c.name)")
        }
        // The quarantine keeps every line's bytes exactly, the invalid UTF-8 one included.
        for entry in quarantined { #expect(entry.raw == cases[entry.lineNumber - 1].bytes, "line \(entry.lineNumber)") }
        #expect(try world.ledgerCount == cases.count - bad.count)
        try world.expectVerifyClean()
        // Nothing is left to do: a second sync pushes and quarantines nothing.
        let again = try world.sync(queue)
        #expect(again.pushed == 0)
        #expect(again.quarantined == 0)
    }
}

private extension Array where Element == UInt8 {
    /// The bytes with the first occurrence of `pattern` replaced (works on lines that are not UTF-8).
    func replacingFirst(_ pattern: [UInt8], with replacement: [UInt8]) -> [UInt8] {
        guard count >= pattern.count else { return self }
        for start in 0...(count - pattern.count) where self[start..<(start + pattern.count)].elementsEqual(pattern) {
            return Array(self[..<start]) + replacement + Array(self[(start + pattern.count)...])
        }
        return self
    }
}
