import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// queue-format.md: `event_id` is "globally unique". `queue append` of a file that was already
/// appended (a clerk fixing the refused lines and running the whole file again) must record
/// none of its events a second time.
@Suite("Queue append: event_id globally unique")
struct QueueAppendEventIDUniqueTests {
    typealias F = ValidationFixture

    func appender(_ queue: QueueDirectory) -> QueueAppender {
        QueueAppender(directory: queue, lockTimeout: nil, now: { F.now })
    }

    /// An input line (no seq) with its own event id.
    func inputLine(_ type: String = "documents_verified", eventID: UUID = UUID()) -> [UInt8] {
        JSONWriter.bytes(F.event(type: type, seq: nil).setting("event_id", to: .string(eventID.lowercased)))
    }

    func file(_ lines: [[UInt8]]) -> [UInt8] { lines.flatMap { $0 + [0x0A] } }

    @Test("appending the same file twice appends nothing the second time and names the seqs")
    func sameFileTwice() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let input = file([inputLine("submitted"), inputLine(), inputLine("withdrawn")])
        let first = try appender(queue).append(.bytes(input))
        #expect(first.appended == 3)
        #expect(first.refused.isEmpty)
        let outbox = try scratch.read(queue.outboxFile)

        let second = try appender(queue).append(.bytes(input))
        #expect(second.appended == 0)
        #expect(second.firstSeq == nil)
        #expect(second.refused.map(\.inputLine) == [1, 2, 3])
        #expect(second.refused.map(\.error) == Array(repeating: "duplicate_event_id", count: 3))
        #expect(second.refused.map(\.existingSeq) == [1, 2, 3])
        #expect(second.refused.allSatisfy { $0.code == nil })
        #expect(second.refused[1].detail.contains("already in the outbox at seq 2"))
        #expect(try scratch.read(queue.outboxFile) == outbox)
    }

    @Test("a file with some lines already present and some new appends only the new ones")
    func someOldSomeNew() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let old = [inputLine("submitted"), inputLine(), inputLine("withdrawn")]
        // The first run refuses line 2 (a phone number that is no phone number)...
        let badPhone = JSONWriter.bytes(F.event(type: "submitted", seq: nil)
            .setting("event_id", to: .string(UUID().lowercased))
            .setting("data.guardian.phone", to: "12345"))
        let first = try appender(queue).append(.bytes(file([old[0], badPhone, old[1], old[2]])))
        #expect(first.appended == 3)
        #expect(first.refused.map(\.code) == [.badPhone])
        // ...the clerk corrects it and runs the whole file again, with one more new line.
        let fixed = JSONWriter.bytes(try JSONParser.parse(badPhone).setting("data.guardian.phone", to: "13812345678"))
        let extra = inputLine()
        let second = try appender(queue).append(.bytes(file([old[0], fixed, old[1], old[2], extra])))
        #expect(second.appended == 2)
        #expect(second.firstSeq == 4)
        #expect(second.lastSeq == 5)
        #expect(second.refused.map(\.inputLine) == [1, 3, 4])
        #expect(second.refused.map(\.existingSeq) == [1, 2, 3])
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        #expect(lines.count == 5)
        let ids = try lines.map { try JSONParser.parse($0.bytes)["event_id"]?.stringValue ?? "" }
        #expect(Set(ids).count == 5)
    }

    @Test("a repeated event_id within one input is refused, naming the line and seq it repeats")
    func repeatWithinTheInput() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let id = UUID()
        let line = inputLine(eventID: id)
        let other = JSONWriter.bytes(F.event(type: "withdrawn", seq: nil).setting("event_id", to: .string(id.uuidString.uppercased())))
        let report = try appender(queue).append(.bytes(file([inputLine(), line, other, line])))
        #expect(report.appended == 2)
        #expect(report.refused.map(\.inputLine) == [3, 4])
        #expect(report.refused.map(\.existingSeq) == [2, 2])
        #expect(report.refused[0].detail.contains("repeats input line 2"))
        #expect(report.refused[0].detail.contains(id.lowercased))
    }

    @Test("repeating the event_id of an input line refused for a rule is refused too")
    func repeatOfARefusedLine() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let id = UUID()
        let refused = JSONWriter.bytes(F.event(type: "withdrawn", seq: nil)
            .setting("event_id", to: .string(id.lowercased)).setting("data.reason", to: 5))
        let report = try appender(queue).append(.bytes(file([refused, inputLine(eventID: id)])))
        #expect(report.appended == 0)
        #expect(report.refused.map(\.error) == ["wrong_type", "duplicate_event_id"])
        #expect(report.refused[1].detail.contains("repeats input line 1, which was refused"))
    }

    @Test("outbox lines of any shape count by their top-level event_id; a torn fragment does not")
    func whatCountsAsPresent() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let nested = UUID(), noSeq = UUID(), quarantinable = UUID(), torn = UUID(), escaped = UUID()
        var outbox: [UInt8] = []
        // Only nested: {"data":{"event_id":...}} is no event of that id.
        outbox += Array(#"{"seq":1,"event_id":"not-a-uuid","data":{"event_id":"\#(nested.lowercased)"}}"#.utf8) + [0x0A]
        outbox += Array(#"{"event_id":"\#(noSeq.uuidString.uppercased())","note":"no seq"}"#.utf8) + [0x0A]
        // A line sync would quarantine (bad phone) still holds its event_id.
        outbox += JSONWriter.bytes(F.event(type: "submitted", seq: 7).setting("event_id", to: .string(quarantinable.lowercased))
            .setting("data.guardian.phone", to: "12345")) + [0x0A]
        // An escaped key is the same key.
        outbox += Array(#"{"seq":8,"event\u005fid":"\#(escaped.lowercased)"}"#.utf8) + [0x0A]
        // A fragment torn by a crash, later terminated by an appender.
        let full = JSONWriter.bytes(F.event(type: "withdrawn", seq: 9).setting("event_id", to: .string(torn.lowercased)))
        outbox += Array(full.dropLast(5)) + [0x0A]
        try scratch.write(queue.outboxFile, outbox)

        let ids = try QueueAppender.eventIDs(in: queue.outboxFile)
        #expect(ids[nested] == nil)
        #expect(ids[noSeq] == 0)
        #expect(ids[quarantinable] == 7)
        #expect(ids[escaped] == 8)
        #expect(ids[torn] == nil)
        #expect(ids.count == 3)

        let report = try appender(queue).append(.bytes(file([inputLine(eventID: torn), inputLine(eventID: noSeq),
                                                             inputLine(eventID: nested)])))
        #expect(report.appended == 2)
        #expect(report.refused.map(\.inputLine) == [2])
        #expect(report.refused[0].detail.contains("on a line without a valid seq"))
    }

    @Test("the outbox scan agrees with the parser on every line shape it meets")
    func scanAgreesWithTheParser() throws {
        let id = UUID()
        let lines: [String] = [
            #"{"seq":3,"event_id":"\#(id.lowercased)"}"#,
            #"  { "event_id" : "\#(id.lowercased)" , "seq" : 12 , "data" : {"a":[1,{"b":"}]\"x"}], "c":null} }  "#,
            #"{"seq":3.5,"event_id":"\#(id.lowercased)"}"#,
            #"{"seq":-3,"event_id":"\#(id.lowercased)"}"#,
            #"{"seq":99999999999999999999,"event_id":"\#(id.lowercased)"}"#,
            #"{"seq":"4","event_id":"\#(id.lowercased)"}"#,
            #"{"seq":4,"event_id":"\#(id.lowercased)","event_id":"\#(id.lowercased)"}"#,
            #"{"seq":4,"event_id":"\#(id.lowercased)"} x"#,
            #"{"seq":4,"event_id":"\#(id.lowercased)","#,
            #"{"seq":4,"event_id":"\#(id.lowercased)","data":[}"#,
            #"{"seq":4,"event_id":"\#(id.lowercased)","data":{"a":1]}"#,
            #"{"seq":4,"event_id":5}"#,
            #"{"seq":4,"event_id":"\#(id.lowercased)\u0041"}"#,
            #"["event_id","\#(id.lowercased)"]"#,
            "{}", "", "   ",
            #"{"seq":4,"event_id":"\#(id.lowercased)","deep":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}",
            #"{"seq":4,"event_id":"\#(id.lowercased)","deep":"# + String(repeating: "[", count: 63) + String(repeating: "]", count: 63) + "}",
        ]
        for text in lines {
            let bytes = Array(text.utf8)
            let scanned = OutboxLineScan.eventID(bytes)
            var expected: (UUID, Int64)?
            if case .object(let o)? = try? JSONParser.parse(bytes), case .string(let s)? = o["event_id"],
               let parsed = EventLineValidator.parseUUID(s) {
                if case .int(let seq)? = o["seq"], seq >= 1 { expected = (parsed, seq) } else { expected = (parsed, 0) }
            }
            #expect(scanned?.id == expected?.0, "\(text)")
            #expect(scanned?.seq == expected?.1, "\(text)")
        }
    }

    @Test("the event_ids of a large outbox are read with the seq of each line")
    func eventIDsOfALargeOutbox() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let template = String(decoding: JSONWriter.bytes(F.event(type: "submitted", seq: 1)), as: UTF8.self)
        let count = 10_000
        var outbox: [UInt8] = []
        var known: [UUID] = []
        for n in 1...count {
            let id = UUID()
            if n % 2_500 == 0 { known.append(id) }
            outbox += Array(template.replacingOccurrences(of: F.eventID, with: id.lowercased)
                .replacingOccurrences(of: #""seq":1,"#, with: #""seq":\#(n),"#).utf8) + [0x0A]
        }
        try scratch.write(queue.outboxFile, outbox)
        let ids = try QueueAppender.eventIDs(in: queue.outboxFile)
        #expect(ids.count == count)
        #expect(known.map { ids[$0] } == [2_500, 5_000, 7_500, 10_000])
    }
}
