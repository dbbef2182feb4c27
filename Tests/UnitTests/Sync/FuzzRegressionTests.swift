// The outbox fuzz property, and `swift test` running it over Fuzz/Corpus.
//
// Fuzz/run.sh compiles this file into the libFuzzer binary too (with `-D CARDSYNC_FUZZ`, next
// to the Sync/Queue sources, so there is no CardSync module to import and no Testing): the
// fuzzer and these tests check one definition of the property, so a committed regression input
// fails here for the reason it crashed the fuzzer.
import CardCore
import Foundation
#if !CARDSYNC_FUZZ
import Testing
import TestSupport
@testable import CardSync
#endif

/// What any bytes must satisfy when they are an outbox.jsonl that sync reads and validates.
///
/// - The sync reader (`OutboxReader(url:)`) returns exactly the spec's lines: the bytes before
///   each `\n`, unchanged (CR, BOM, empty lines included), numbered from 1; a final line without
///   `\n` is torn and not returned, and the checkpoint stays before it. The same holds read in
///   small chunks and resumed from a checkpoint. The input reader of `queue append`
///   (`OutboxReader(input:)`) returns the torn final line as a line of its own.
/// - Each line read is accepted or quarantined with a code of the spec's Validation table, with
///   `lastSeq` folded as sync does, and accepted + quarantined = lines read. Bureau import (the
///   same validator, bureau types, the torn final line included) accepts or refuses with a code.
/// - An accepted line has a `seq` above every earlier one, an agency type, at most 1 MiB of
///   valid UTF-8, and `data` that reads back equal from its canonical (jsonb) form.
/// - A quarantined line's quarantine.jsonl entry is one line, and gives back the line's exact
///   bytes, its number and its code.
///
/// A crash or a hang of any of these calls is a violation too: libFuzzer reports it as such.
enum OutboxFuzzProperty {
    /// A fixed clock, so that an input gets the same verdicts on any day.
    static let now = Timestamp(rfc3339: "2026-10-03T12:15:27+08:00")!

    /// The codes of the spec's Validation table, written out rather than taken from
    /// `QuarantineCode.allCases`, so that a code the spec does not have is caught.
    static let specCodes: Set<String> = [
        "malformed_json", "line_too_long", "missing_field", "wrong_type", "seq_not_increasing", "bad_uuid",
        "unknown_type", "bad_timestamp", "occurred_in_future", "invalid_id_number", "id_birth_mismatch",
        "not_a_minor", "guardian_not_adult", "missing_document", "bad_phone", "immutable_field", "bad_enum",
    ]

    struct Outcome {
        var accepted = 0
        var quarantined = 0
        /// Outbox-mode codes given, to tell how much of the validator an input set reaches.
        var codes: Set<String> = []
        /// Empty when the property holds. Line numbers, codes and counts only: never the bytes,
        /// which may be personal data.
        var violations: [String] = []
    }

    /// Two lines, of exactly 1 MiB (valid) and of 1 MiB + 1 byte (`line_too_long`): too big to
    /// commit or to mutate at speed, so the fuzz binary checks them once at startup and
    /// `FuzzRegressionTests.hugeLines` in `swift test`.
    static func hugeLines() -> [UInt8] {
        func line(length: Int) -> [UInt8] {
            let head = Array(#"{"seq":1,"event_id":"4b0d5c1e-6f0a-4f5e-9a57-1f1d3c9f2a10","application_id":"9e2f4b0d-6f0a-4f5e-9a57-1f1d3c9f2a11","type":"withdrawn","occurred_at":"2026-10-03T09:15:27+08:00","data":{"reason":""#.utf8)
            let tail = Array(#""}}"#.utf8)
            return head + [UInt8](repeating: UInt8(ascii: "a"), count: length - head.count - tail.count) + tail + [0x0A]
        }
        let limit = EventLineValidator.maximumLineBytes
        return line(length: limit) + line(length: limit + 1)
    }

    /// Writes `bytes` to `scratch` (created or replaced) and checks the property on it.
    static func check(_ bytes: [UInt8], scratch: URL) -> Outcome {
        var outcome = Outcome()
        guard write(bytes, to: scratch.path) else {
            outcome.violations.append("cannot write the scratch file \(scratch.path): errno \(errno)")
            return outcome
        }

        // The spec's lines: each ends with "\n"; whatever follows the last "\n" is torn.
        var lines: [Range<Int>] = []
        var lineStart = 0
        for (k, byte) in bytes.enumerated() where byte == 0x0A {
            lines.append(lineStart..<k)
            lineStart = k + 1
        }
        let torn = lineStart..<bytes.count

        func compare(_ got: [OutboxLine], _ want: [Range<Int>], _ reader: String) {
            guard got.count == want.count else {
                outcome.violations.append("\(reader): \(got.count) lines read, the spec's boundaries give \(want.count)")
                return
            }
            for (k, (line, range)) in zip(got, want).enumerated() {
                // A line ends at its "\n", except the torn line of an input file, which ends the file.
                let end = range.upperBound < bytes.count ? range.upperBound + 1 : range.upperBound
                if line.lineNumber != k + 1 || line.endOffset != Int64(end) || line.bytes[...] != bytes[range] {
                    outcome.violations.append(
                        "\(reader): line \(k + 1) read as line \(line.lineNumber) of \(line.bytes.count) bytes ending at \(line.endOffset), expected \(range.count) bytes ending at \(end)")
                    return
                }
            }
        }

        let read: [OutboxLine]
        let complete: [OutboxLine]
        do throws(QueueError) {
            // The default chunk, but no larger than the file: the same reads for any input, without
            // zero-filling 1 MiB of buffer twice per input (most of each fuzz run).
            let reader = try OutboxReader(url: scratch, chunkSize: min(OutboxReader.defaultChunkSize, bytes.count + 1))
            read = try reader.readAll()
            compare(read, lines, "sync reader")
            if reader.offset != Int64(lineStart) || reader.lineNumber != lines.count {
                outcome.violations.append(
                    "sync reader: checkpoint at byte \(reader.offset), line \(reader.lineNumber); expected byte \(lineStart), line \(lines.count)")
            }

            // Chunks smaller than most lines, and a restart from the checkpoint of a first batch;
            // both sizes follow from the input, so that a corpus varies them and stays reproducible.
            // Larger inputs get larger chunks: 1 MiB lines in 5-byte reads took seconds.
            let chunk = 1 + bytes.count % 7 + bytes.count / 4096
            let first = try OutboxReader(url: scratch, chunkSize: chunk)
            let head = try first.nextBatch(maxLines: 1 + bytes.count % 3)
            let rest = try OutboxReader(url: scratch, startOffset: first.offset, startLine: first.lineNumber,
                                        chunkSize: chunk + 5).readAll()
            compare(head + rest, lines, "sync reader in \(chunk)-byte chunks resumed after \(head.count) lines")

            let input = OutboxReader(input: try QueueFile.open(scratch.path, .readOnly, what: "fuzz input"),
                                     displayURL: scratch, chunkSize: chunk + 3)
            complete = try input.readAll()
            compare(complete, torn.isEmpty ? lines : lines + [torn], "queue append input reader")
        } catch {
            outcome.violations.append("a reader threw on a readable file: \(error.code.rawValue)")
            return outcome
        }

        let outbox = EventLineValidator(mode: .outbox, now: now)
        var lastSeq: Int64?
        for line in read {
            let n = line.lineNumber
            let verdict = outbox.check(line.bytes, lineNumber: n, lastSeq: lastSeq)
            switch verdict.result {
            case .success(let event):
                outcome.accepted += 1
                if event.lineNumber != n || verdict.seq != event.seq {
                    outcome.violations.append("line \(n): accepted as line \(event.lineNumber), seq \(event.seq), verdict seq \(verdict.seq.map(String.init) ?? "none")")
                }
                if let lastSeq, event.seq <= lastSeq {
                    outcome.violations.append("line \(n): accepted with seq \(event.seq), not above the earlier \(lastSeq)")
                }
                if !EventType.agencyTypes.contains(event.type) {
                    outcome.violations.append("line \(n): accepted an outbox event of type \(event.type.rawValue)")
                }
                if line.bytes.count > EventLineValidator.maximumLineBytes || !JSONParser.isValidUTF8(line.bytes) {
                    outcome.violations.append("line \(n): accepted \(line.bytes.count) bytes that are over 1 MiB or not UTF-8")
                }
                let canonical = EventLineValidator.canonicalDataBytes(event)
                if (try? JSONParser.parse(canonical)) != event.data {
                    outcome.violations.append("line \(n): data does not read back equal from its canonical form")
                }
            case .failure(let reason):
                outcome.quarantined += 1
                outcome.codes.insert(reason.code.rawValue)
                checkQuarantined(line, reason, into: &outcome)
            }
            if let seq = verdict.seq { lastSeq = max(lastSeq ?? seq, seq) }
        }
        // Bureau import reads an exported file: its final line counts without a newline too.
        let bureau = EventLineValidator(mode: .bureauImport, now: now)
        for line in complete {
            let n = line.lineNumber
            switch bureau.check(line.bytes, lineNumber: n, lastSeq: nil).result {
            case .success(let event):
                if !EventType.bureauTypes.contains(event.type) || event.seq != 0 {
                    outcome.violations.append("line \(n): bureau import accepted type \(event.type.rawValue) with seq \(event.seq)")
                }
            case .failure(let reason):
                // Refused and listed, not quarantined: the code and the detail are all there is.
                if !specCodes.contains(reason.code.rawValue) || reason.detail.isEmpty {
                    outcome.violations.append("line \(n): bureau import refused it with \(reason.code.rawValue), not a code of the spec with a detail")
                }
            }
        }
        if outcome.accepted + outcome.quarantined != read.count || read.count != lines.count {
            outcome.violations.append(
                "\(outcome.accepted) accepted + \(outcome.quarantined) quarantined, \(read.count) lines read, \(lines.count) lines in the input")
        }
        return outcome
    }

    /// Replaces the file's contents. Not `Data.write(to:)`, which fsyncs: a scratch file needs
    /// no durability, and the fsync took most of each fuzz run.
    private static func write(_ bytes: [UInt8], to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    private static func checkQuarantined(_ line: OutboxLine, _ reason: QuarantineReason, into outcome: inout Outcome) {
        let n = line.lineNumber
        let code = reason.code.rawValue
        guard specCodes.contains(code) else {
            outcome.violations.append("line \(n): code \(code) is not in the spec")
            return
        }
        if reason.detail.isEmpty { outcome.violations.append("line \(n): \(code) without a detail") }
        let entry = QuarantineWriter.entryBytes(lineNumber: n, raw: line.bytes, reason: reason)
        guard entry.last == 0x0A, !entry.dropLast().contains(0x0A) else {
            outcome.violations.append("line \(n): the quarantine entry is not exactly one line")
            return
        }
        guard let back = QuarantineEntry(line: Array(entry.dropLast())), back.lineNumber == n, back.error == code,
              back.raw == line.bytes
        else {
            outcome.violations.append("line \(n): the quarantine entry does not give back the line, its number and \(code)")
            return
        }
    }
}

#if !CARDSYNC_FUZZ
/// Every committed fuzz input through the fuzzer's property: the seeds, so that `swift test`
/// exercises what the fuzzer starts from, and Fuzz/Corpus/regressions/, the inputs that once
/// broke it.
@Suite struct FuzzRegressionTests {
    // Tests/UnitTests/Sync/ → the repository's root.
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    /// Files under `directory`, relative paths sorted (for stable failure messages).
    static func files(under directory: String = "") -> [String] {
        let root = directory.isEmpty ? corpus : corpus.appendingPathComponent(directory)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
        else { return [] }
        let prefix = corpus.standardizedFileURL.path + "/"
        return walker.compactMap { item -> String? in
            guard let url = item as? URL, (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true
            else { return nil }
            return String(url.standardizedFileURL.path.dropFirst(prefix.count))
        }.sorted()
    }

    static func run(_ bytes: [UInt8]) throws -> OutboxFuzzProperty.Outcome {
        let directory = try TemporaryDirectory(prefix: "cardsync-fuzz")
        return OutboxFuzzProperty.check(bytes, scratch: directory.url.appendingPathComponent("outbox.jsonl"))
    }

    static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: corpus.appendingPathComponent(relative)))
    }

    @Test(arguments: files())
    func corpusFileHoldsTheProperty(_ file: String) throws {
        let outcome = try Self.run(try Self.bytes(file))
        #expect(outcome.violations.isEmpty, "\(file): \(outcome.violations.joined(separator: "; "))")
    }

    /// The seeds reach every rule: a corpus that lost its valid events or a code's example would
    /// leave the fuzzer mutating lines that fail early. `line_too_long` needs more than 1 MiB,
    /// too big to commit: `hugeLines` covers it.
    @Test func corpusReachesEveryCode() throws {
        var codes: Set<String> = []
        for file in Self.files() { codes.formUnion(try Self.run(try Self.bytes(file)).codes) }
        #expect(OutboxFuzzProperty.specCodes.subtracting(codes) == ["line_too_long"])
    }

    /// Files under valid/ hold only lines sync accepts (outbox-*) or bureau import accepts
    /// (bureau-*): the starting points from which mutations reach the deepest checks.
    @Test func validSeedsAreAccepted() throws {
        let files = Self.files(under: "valid")
        #expect(files.count >= 6)
        for file in files {
            let bytes = try Self.bytes(file)
            let name = (file as NSString).lastPathComponent
            let mode: EventLineValidator.Mode = name.hasPrefix("bureau-") ? .bureauImport : .outbox
            let validator = EventLineValidator(mode: mode, now: OutboxFuzzProperty.now)
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
            #expect(!lines.isEmpty && bytes.last == 0x0A, "\(file): no complete line")
            var lastSeq: Int64?
            for (k, line) in lines.enumerated() {
                let verdict = validator.check(line, lineNumber: k + 1, lastSeq: lastSeq)
                #expect(verdict.reason == nil, "\(file) line \(k + 1): \(verdict.reason?.code.rawValue ?? "")")
                lastSeq = verdict.seq ?? lastSeq
            }
        }
    }

    /// Lines at and just over the 1 MiB limit, read in several chunks of the sync reader.
    @Test func hugeLines() throws {
        let outcome = try Self.run(OutboxFuzzProperty.hugeLines())
        #expect(outcome.violations.isEmpty, "\(outcome.violations)")
        #expect(outcome.accepted == 1 && outcome.codes == ["line_too_long"])
    }
}
#endif
