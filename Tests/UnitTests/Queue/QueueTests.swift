import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

@Suite("Queue directory")
struct QueueDirectoryTests {
    @Test func initWritesAgencyJSONInTheSpecShapeAndAnEmptyOutbox() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let text = String(decoding: try scratch.read(queue.agencyFile), as: UTF8.self)
        #expect(text == """
        {"format": "cardsync.queue.v1",
         "agency": {"code": "CS-FR-001", "name": "芙蓉区社保卡服务网点", "district": "芙蓉区", "channel": "counter"}}

        """)
        #expect(try scratch.read(queue.outboxFile).isEmpty)
        #expect(try queue.readAgency() == scratch.agency)
    }

    @Test func initTwiceWithTheSameAgencyIsSafe() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        try scratch.append(queue.outboxFile, outboxLine(seq: 1) + [0x0A])
        let before = try scratch.read(queue.outboxFile)
        let again = try scratch.queue()
        #expect(again == queue)
        #expect(try scratch.read(queue.outboxFile) == before)
        #expect(try queue.readAgency() == scratch.agency)
    }

    @Test func initRefusesADirectoryOfAnotherAgency() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let other = Agency(code: "CS-YL-002", name: "岳麓区网点")
        #expect(throws: QueueError.self) { try QueueDirectory.initialize(at: queue.url, agency: other) }
        do {
            try QueueDirectory.initialize(at: queue.url, agency: other)
        } catch {
            #expect(error.code == .agencyMismatch)
        }
        #expect(try queue.readAgency().code == "CS-FR-001")
    }

    @Test func initRefusesAnInvalidAgencyCode() throws {
        let scratch = try QueueScratch()
        do {
            try QueueDirectory.initialize(at: scratch.root.appendingPathComponent("q"), agency: Agency(code: "cs fr", name: "x"))
            Issue.record("accepted an invalid code")
        } catch {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test func readAgencyErrorsAreClear() throws {
        let scratch = try QueueScratch()
        let queue = QueueDirectory(scratch.root)
        do {
            _ = try queue.readAgency()
            Issue.record("read a missing agency.json")
        } catch {
            #expect(error.code == .notAQueue)
            #expect(error.message.contains("agency.json is missing"))
        }
        let cases: [(String, String)] = [
            (#"{"format": "cardsync.queue.v2", "agency": {"code": "CS-FR-001", "name": "x"}}"#, "format"),
            (#"{"format": "cardsync.queue.v1", "agency": {"code": "cs-fr-001", "name": "x"}}"#, "agency.code"),
            (#"{"format": "cardsync.queue.v1", "agency": {"code": "CS-FR-001", "name": "x", "channel": "mail"}}"#, "agency.channel"),
            (#"{"format": "cardsync.queue.v1""#, "not a valid agency file"),
        ]
        for (text, mention) in cases {
            try scratch.write(queue.agencyFile, Array(text.utf8))
            do {
                _ = try queue.readAgency()
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.code == .badAgencyFile)
                #expect(error.message.contains(mention), "\(error.message)")
            }
        }
    }

    @Test func theQueueLockExcludesASecondHolder() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let lock = try QueueLock.acquire(queue)
        do {
            _ = try QueueLock.acquire(queue)
            Issue.record("took the lock twice")
        } catch {
            #expect(error.code == .locked)
            #expect(error.message.contains("another cardsync sync holds the queue lock for \(queue.path)"))
        }
        lock.release()
        let again = try QueueLock.acquire(queue, timeout: .milliseconds(200))
        #expect(again.isHeld)
    }

    @Test func theLockWaitsUpToItsTimeout() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let lock = try QueueLock.acquire(queue)
        let start = ContinuousClock.now
        #expect(throws: QueueError.self) { _ = try QueueLock.acquire(queue, timeout: .milliseconds(200)) }
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        lock.release()
    }
}

@Suite("Queue outbox reader")
struct QueueOutboxReaderTests {
    @Test func aTornFinalLineIsLeftAloneUntilItIsComplete() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let first = outboxLine(seq: 1), second = outboxLine(seq: 2)
        try scratch.append(queue.outboxFile, first + [0x0A] + second.prefix(40))
        let reader = try OutboxReader(url: queue.outboxFile)
        let lines = try reader.nextBatch(maxLines: 100)
        #expect(lines.map(\.bytes) == [first])
        #expect(reader.offset == Int64(first.count + 1))
        #expect(try reader.nextBatch(maxLines: 100).isEmpty)
        // The appender finishes the line: the same reader now returns it whole.
        try scratch.append(queue.outboxFile, Array(second.dropFirst(40)) + [0x0A])
        let rest = try reader.nextBatch(maxLines: 100)
        #expect(rest == [OutboxLine(bytes: second, lineNumber: 2, endOffset: Int64(first.count + second.count + 2))])
    }

    @Test func aReaderFromACheckpointReadsOnlyTheNewLines() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        var old: [UInt8] = []
        for seq in 1...5000 { old += outboxLine(seq: Int64(seq)) + [0x0A] }
        try scratch.append(queue.outboxFile, old)
        // A first sync reads everything and records where it stopped.
        let first = try OutboxReader(url: queue.outboxFile, chunkSize: 4096)
        let all = try first.readAll()
        #expect(all.count == 5000)
        #expect(first.offset == Int64(old.count))
        var new: [UInt8] = []
        for seq in 5001...5010 { new += outboxLine(seq: Int64(seq)) + [0x0A] }
        try scratch.append(queue.outboxFile, new)
        let reader = try OutboxReader(url: queue.outboxFile, startOffset: first.offset, startLine: first.lineNumber)
        let lines = try reader.readAll()
        #expect(lines.count == 10)
        #expect(lines.first?.lineNumber == 5001)
        #expect(lines.last?.lineNumber == 5010)
        #expect(lines.last?.endOffset == Int64(old.count + new.count))
        #expect(try JSONParser.parse(lines[0].bytes)["seq"] == .int(5001))
    }

    @Test func batchesAndChunksDoNotSplitLines() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        var expected: [[UInt8]] = []
        var bytes: [UInt8] = []
        for seq in 1...50 {
            let line = outboxLine(seq: Int64(seq))
            expected.append(line)
            bytes += line + [0x0A]
        }
        expected.append([]) // an empty line is a line too (quarantined by sync)
        bytes += [0x0A]
        try scratch.append(queue.outboxFile, bytes)
        let reader = try OutboxReader(url: queue.outboxFile, chunkSize: 7)
        var got: [OutboxLine] = []
        while true {
            let batch = try reader.nextBatch(maxLines: 3)
            if batch.isEmpty { break }
            #expect(batch.count <= 3)
            got += batch
        }
        #expect(got.map(\.bytes) == expected)
        #expect(got.map(\.lineNumber) == Array(1...51))
        #expect(got.last?.endOffset == Int64(bytes.count))
    }

    @Test func aLineLongerThan1MiBIsReadWhole() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 3 << 20)
        let after = outboxLine(seq: 9)
        try scratch.append(queue.outboxFile, long + [0x0A] + after + [0x0A])
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        #expect(lines.count == 2)
        #expect(lines[0].bytes.count == 3 << 20)
        #expect(lines[1].bytes == after)
        let verdict = EventLineValidator(now: ValidationFixture.now).validate(lines[0].bytes, lineNumber: 1, lastSeq: nil)
        #expect(verdict.failureCode == .lineTooLong)
    }

    @Test func anOutboxShorterThanTheCheckpointIsAnError() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        try scratch.append(queue.outboxFile, outboxLine(seq: 1) + [0x0A])
        do {
            _ = try OutboxReader(url: queue.outboxFile, startOffset: 1_000_000, startLine: 10)
            Issue.record("opened past the end")
        } catch {
            #expect(error.code == .outboxTruncated)
        }
    }
}

@Suite("Queue quarantine, inbox and state")
struct QueueFilesTests {
    @Test func quarantineKeepsTheRawBytesExactly() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let raw = Array(#"{"seq": 3, "note": "引号\" 反斜杠\\ tab"#.utf8) + [0x09] + Array(#" \u0041", "x": [1,2"#.utf8) + [0x01, 0x7F]
        let writer = try QuarantineWriter(url: queue.quarantineFile)
        writer.append(lineNumber: 3, raw: raw, reason: QuarantineReason(.malformedJSON, "not JSON: unexpected end of input at byte 60"))
        try writer.flush()
        let bytes = try scratch.read(queue.quarantineFile)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"line":3,"raw":"{\"seq\": 3, \"note\": \"引号\\\" 反斜杠\\\\ tab\t \\u0041\""#))
        #expect(text.hasSuffix(#""error":"malformed_json","detail":"not JSON: unexpected end of input at byte 60"}"# + "\n"))
        let entries = try QuarantineEntry.readAll(from: queue.quarantineFile)
        #expect(entries.count == 1)
        #expect(entries[0].raw == raw)
        #expect(entries[0].lineNumber == 3)
        #expect(entries[0].error == "malformed_json")
        // Key order: line, raw, error, detail.
        let keys = ["\"line\"", "\"raw\"", "\"error\"", "\"detail\""].map { text.range(of: $0)!.lowerBound }
        #expect(keys == keys.sorted())
    }

    @Test func invalidUTF8IsKeptAsBase64() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let raw: [UInt8] = Array(#"{"seq": 4, "name": ""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#""}"#.utf8)
        let reason = EventLineValidator(now: ValidationFixture.now).validate(raw, lineNumber: 4, lastSeq: nil).failure!
        #expect(reason.code == .malformedJSON)
        let writer = try QuarantineWriter(url: queue.quarantineFile)
        writer.append(lineNumber: 4, raw: raw, reason: reason)
        try writer.flush()
        let value = try JSONParser.parse(try scratch.read(queue.quarantineFile).dropLast())
        #expect(value["raw"] == nil)
        #expect(value["raw_base64"] == .string(Data(raw).base64EncodedString()))
        #expect(try QuarantineEntry.readAll(from: queue.quarantineFile).first?.raw == raw)
    }

    @Test func quarantineTruncatesBackToACheckpoint() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let writer = try QuarantineWriter(url: queue.quarantineFile)
        writer.append(lineNumber: 1, raw: Array("x".utf8), reason: QuarantineReason(.malformedJSON, "a"))
        try writer.flush()
        let size = try writer.size()
        writer.append(lineNumber: 2, raw: Array("y".utf8), reason: QuarantineReason(.malformedJSON, "b"))
        try writer.flush()
        try writer.truncate(toSize: size)
        writer.append(lineNumber: 3, raw: Array("z".utf8), reason: QuarantineReason(.malformedJSON, "c"))
        try writer.flush()
        #expect(try QuarantineEntry.readAll(from: queue.quarantineFile).map(\.lineNumber) == [1, 3])
    }

    @Test func inboxLinesRoundTripAndATornFinalLineIsIgnored() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let entry = InboxLine(ledgerID: 88213, eventID: UUID(), applicationID: UUID(), type: .rejected,
                              occurredAt: Timestamp(rfc3339: "2026-10-05T10:00:00+08:00")!,
                              data: ["reason": "照片不合格"])
        let writer = try InboxWriter(url: queue.inboxFile)
        writer.append(entry)
        writer.append(InboxLine(ledgerID: 88214, eventID: UUID(), applicationID: entry.applicationID, type: .approved,
                                occurredAt: Timestamp(rfc3339: "2026-10-06T10:00:00Z")!, data: [:]))
        try writer.flush()
        let text = String(decoding: try scratch.read(queue.inboxFile), as: UTF8.self)
        #expect(text.hasPrefix(#"{"ledger_id":88213,"event_id":""# + entry.eventID.uuidString.lowercased()
            + #"","application_id":""# + entry.applicationID.uuidString.lowercased()
            + #"","type":"rejected","occurred_at":"2026-10-05T10:00:00+08:00","data":{"reason":"照片不合格"}}"# + "\n"))
        try scratch.append(queue.inboxFile, Array(#"{"ledger_id":88215,"event_"#.utf8))
        let read = try InboxReader.readAll(from: queue.inboxFile)
        #expect(read.map(\.ledgerID) == [88213, 88214])
        #expect(read[0] == entry)
        #expect(read[0].occurredAt.offsetSeconds == 8 * 3600)
        // Crash recovery: back to the size after the first line.
        try writer.truncate(toSize: Int64(entry.lineBytes().count))
        #expect(try InboxReader.readAll(from: queue.inboxFile) == [entry])
        #expect(try InboxReader.readAll(from: scratch.root.appendingPathComponent("none.jsonl")).isEmpty)
    }

    @Test func aCompleteInboxLineThatIsNotAnEntryIsAnError() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        try scratch.write(queue.inboxFile, Array("{\"ledger_id\": \"x\"}\n".utf8))
        #expect(throws: QueueError.self) { _ = try InboxReader.readAll(from: queue.inboxFile) }
    }

    @Test func stateJSONIsSavedAtomicallyAndLoadedBack() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        #expect(try queue.loadCheckpoint() == nil)
        var checkpoint = SyncCheckpoint(outboxOffset: 18231, outboxLine: 30, lastSeq: 30, pushedSeq: 29, inboxSize: 4410,
                                        inboxLedgerID: 88213, pulledDelivery: 512, quarantineSize: 97,
                                        updatedAt: Timestamp(rfc3339: "2026-10-03T09:20:00+08:00"))
        try queue.saveCheckpoint(checkpoint)
        #expect(try queue.loadCheckpoint() == checkpoint)
        checkpoint.outboxOffset = 20000
        checkpoint.lastSeq = nil
        try queue.saveCheckpoint(checkpoint)
        let loaded = try queue.loadCheckpoint()
        #expect(loaded == checkpoint)
        #expect(loaded?.updatedAt?.rfc3339 == "2026-10-03T09:20:00+08:00")
        // No temporary file is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: queue.path).sorted()
        #expect(names == ["agency.json", "outbox.jsonl", "state.json"])
        // Written keys are the spec's snake_case names.
        let value = try JSONParser.parse(try scratch.read(queue.stateFile))
        #expect(value["version"] == .int(1))
        #expect(value["outbox_offset"] == .int(20000))
        #expect(value["last_seq"] == .null)
    }

    @Test func aDamagedStateJSONIsABadStateError() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        try scratch.write(queue.stateFile, Array("{\"version\": 1, \"outbox_off".utf8))
        do {
            _ = try queue.loadCheckpoint()
            Issue.record("loaded a damaged state.json")
        } catch {
            #expect(error.code == .badState)
        }
        try scratch.write(queue.stateFile, Array("{\"version\": 2}".utf8))
        #expect(throws: QueueError.self) { _ = try queue.loadCheckpoint() }
        // Only the version is required; missing counters mean zero.
        try scratch.write(queue.stateFile, Array("{\"version\": 1, \"future_field\": true}".utf8))
        #expect(try queue.loadCheckpoint() == .initial)
    }
}

@Suite("Queue append")
struct QueueAppendTests {
    func appender(_ queue: QueueDirectory) -> QueueAppender {
        QueueAppender(directory: queue, lockTimeout: nil, now: { ValidationFixture.now })
    }

    @Test func appendAssignsSeqAndRefusesInvalidLinesWhileAppendingTheValidOnes() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let valid1 = outboxLine(seq: nil, type: "submitted")
        let invalid = JSONWriter.bytes(ValidationFixture.event(seq: nil).setting("data.guardian.phone", to: "12345"))
        let valid2 = outboxLine(seq: nil, type: "withdrawn")
        let input = valid1 + [0x0A] + invalid + [0x0A, 0x0A] + Array("not json".utf8) + [0x0A] + valid2
        let report = try appender(queue).append(.bytes(input))
        #expect(report.appended == 2)
        #expect(report.firstSeq == 1)
        #expect(report.lastSeq == 2)
        #expect(report.refused.map(\.inputLine) == [2, 4])
        #expect(report.refused.map(\.code) == [.badPhone, .malformedJSON])
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        #expect(lines.count == 2)
        // The original bytes are kept, with "seq" inserted after the opening brace.
        #expect(lines[0].bytes == Array(#"{"seq":1,"#.utf8) + valid1.dropFirst())
        #expect(try JSONParser.parse(lines[1].bytes)["seq"] == .int(2))
        // The appended lines pass the sync's validation.
        let validator = EventLineValidator(now: ValidationFixture.now)
        #expect(validator.validate(lines[0].bytes, lineNumber: 1, lastSeq: nil).failureCode == nil)
        #expect(validator.validate(lines[1].bytes, lineNumber: 2, lastSeq: 1).failureCode == nil)
    }

    @Test func appendContinuesAfterTheGreatestSeqAtTheEndOfTheOutbox() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        var existing: [UInt8] = []
        for seq in [1, 2, 5, 40, 7] as [Int64] { existing += outboxLine(seq: seq) + [0x0A] }
        try scratch.append(queue.outboxFile, existing)
        #expect(try QueueAppender.greatestSeq(in: queue.outboxFile) == 40)
        // An input line that carries a seq has it replaced.
        let report = try appender(queue).append(.bytes(outboxLine(seq: 3) + [0x0A]))
        #expect(report.firstSeq == 41)
        let last = try OutboxReader(url: queue.outboxFile).readAll().last!
        #expect(try JSONParser.parse(last.bytes)["seq"] == .int(41))
        #expect(last.bytes.starts(with: Array(#"{"seq":41,"#.utf8)))
    }

    @Test func greatestSeqReadsFromTheEndOnly() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        var bytes: [UInt8] = []
        for seq in 1...3000 { bytes += outboxLine(seq: Int64(seq)) + [0x0A] }
        // A torn final line is not a line.
        bytes += Array(#"{"seq": 99999, "event_"#.utf8)
        try scratch.append(queue.outboxFile, bytes)
        #expect(try QueueAppender.greatestSeq(in: queue.outboxFile) == 3000)
        try scratch.write(queue.outboxFile, [])
        #expect(try QueueAppender.greatestSeq(in: queue.outboxFile) == nil)
    }

    @Test func aTornFinalOutboxLineIsTerminatedBeforeAppending() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let torn = Array(#"{"seq": 1, "event_id": "4b0d"#.utf8)
        try scratch.append(queue.outboxFile, outboxLine(seq: 1) + [0x0A] + torn)
        let report = try appender(queue).append(.bytes(outboxLine(seq: nil)))
        #expect(report.terminatedTornLine)
        #expect(report.appended == 1)
        let lines = try OutboxReader(url: queue.outboxFile).readAll()
        #expect(lines.count == 3)
        #expect(lines[1].bytes == torn)
        #expect(try JSONParser.parse(lines[2].bytes)["seq"] == .int(2))
    }

    @Test func appendReadsAFileAndHoldsTheLock() throws {
        let scratch = try QueueScratch()
        let queue = try scratch.queue()
        let input = scratch.root.appendingPathComponent("events.jsonl")
        var bytes: [UInt8] = []
        for _ in 0..<25 { bytes += outboxLine(seq: nil) + [0x0D, 0x0A] }
        try scratch.write(input, bytes)
        let lock = try QueueLock.acquire(queue)
        #expect(throws: QueueError.self) { _ = try appender(queue).append(.file(input)) }
        lock.release()
        let small = QueueAppender(directory: queue, lockTimeout: nil, batchSize: 10, now: { ValidationFixture.now })
        let report = try small.append(.file(input))
        #expect(report.appended == 25)
        #expect(report.lastSeq == 25)
        #expect(try OutboxReader(url: queue.outboxFile).readAll().count == 25)
    }
}

extension Result where Failure == QuarantineReason {
    var failure: QuarantineReason? { if case .failure(let r) = self { return r }; return nil }
    var failureCode: QuarantineCode? { failure?.code }
}
