import CardCore
import Foundation

/// `cardsync queue append DIR [FILE|-]`: validates event lines and appends the valid ones to
/// outbox.jsonl, assigning `seq`.
///
/// - Input lines are outbox lines without `seq`. A `seq` in the input is ignored and replaced
///   (such a line is rewritten compactly with `seq` first and the other keys sorted); a line
///   without `seq` is kept byte for byte, with `"seq":N,` inserted after its opening `{`.
///   Blank input lines are skipped; a trailing `\r` is dropped; the last input line needs no `\n`.
/// - Each line is validated as it will be written (with its assigned `seq`), by the same
///   validator as sync. Invalid lines are refused (reported with their input line number, code
///   and detail) and consume no `seq`; the valid ones are appended.
/// - A valid line whose `event_id` the outbox already holds is refused too (`duplicate_event_id`,
///   naming the `seq` that holds it), and so is a line repeating the `event_id` of an earlier
///   line of the same input: `event_id` is globally unique, and a clerk who fixes the refused
///   lines of a file and appends the whole file again must not record its other events twice.
///   Every complete outbox line that is a JSON object with a top-level UUID `event_id` counts,
///   also one that sync quarantined (its event never reached the centre: give the corrected
///   event a new `event_id`). The outbox is read once, keeping a `seq` per `event_id`.
/// - A UTF-8 byte order mark at the very start of the input (as some Windows editors write
///   one) is dropped; anywhere else it is part of a line, which is then not JSON.
/// - The new `seq` starts after the greatest `seq` found at the end of the outbox (read
///   backwards from the end, not the whole file).
/// - The queue lock is held throughout, so two appenders cannot interleave `seq`s. Lines are
///   written in batches, each with one O_APPEND write and one fsync.
/// - If the outbox ends with an incomplete line that stays incomplete for two seconds (so it is
///   not another program's append in progress but torn by a crash), a `\n` is written first so
///   that the fragment stays a line of its own (sync will quarantine it, keeping its bytes)
///   instead of being glued to the first appended line.
public struct QueueAppender: Sendable {
    public struct RefusedLine: Sendable, Equatable {
        /// What `error` says of a valid line whose `event_id` is already taken.
        public static let duplicateEventID = "duplicate_event_id"

        /// 1-based line number in the input.
        public var inputLine: Int
        /// The validation rule the line fails; nil when it is valid but repeats an `event_id`.
        public var code: QuarantineCode?
        public var detail: String
        /// For a repeated `event_id`: the outbox `seq` that already holds it (nil when that
        /// outbox line has no valid `seq`, or when the line repeats a refused input line).
        public var existingSeq: Int64?

        /// The code as printed: the spec's validation code, or `duplicate_event_id`.
        public var error: String { code?.rawValue ?? Self.duplicateEventID }
    }

    public struct Report: Sendable, Equatable {
        public var appended = 0
        /// `seq` of the first and last appended lines; nil when nothing was appended.
        public var firstSeq: Int64?
        public var lastSeq: Int64?
        public var refused: [RefusedLine] = []
        /// Whether a torn final outbox line had to be terminated before appending.
        public var terminatedTornLine = false
    }

    public enum Input: Sendable {
        case file(URL)
        case standardInput
        case bytes([UInt8])
    }

    public let directory: QueueDirectory
    public var lockTimeout: Duration?
    public var batchSize: Int
    /// Called as the input is read, batch by batch, with the bytes read so far and the input's
    /// size (nil for standard input, whose size is unknown): for a progress bar.
    public var progress: (@Sendable (_ bytesRead: Int64, _ bytesTotal: Int64?) -> Void)?
    private let clock: @Sendable () -> Timestamp

    /// `now` is the clock for `occurred_in_future` (the system clock by default).
    public init(directory: QueueDirectory, lockTimeout: Duration? = .seconds(30), batchSize: Int = 10_000,
                now: @escaping @Sendable () -> Timestamp = QueueAppender.systemNow)
    {
        self.directory = directory
        self.lockTimeout = lockTimeout
        self.batchSize = batchSize
        self.clock = now
    }

    @Sendable public static func systemNow() -> Timestamp {
        Timestamp(secondsSince1970: Date().timeIntervalSince1970)
    }

    public func append(_ input: Input) throws(QueueError) -> Report {
        _ = try directory.readAgency() // a queue, and a valid one
        let lock = try QueueLock.acquire(directory, timeout: lockTimeout)
        defer { lock.release() }

        let reader: OutboxReader
        var total: Int64?
        switch input {
        case .file(let url):
            let file = try QueueFile.open(url.path, .readOnly, what: "input file")
            total = try file.size()
            reader = OutboxReader(input: file, displayURL: url)
        case .standardInput:
            reader = OutboxReader(input: QueueFile.borrowing(fd: 0, path: "standard input"),
                                  displayURL: URL(fileURLWithPath: "/dev/stdin"))
        case .bytes(let bytes):
            let temporary = ByteSource(bytes)
            return try appendLines(temporary.lines())
        }
        let progress = self.progress
        let size = total
        return try appendLines(AnyLineSource { () throws(QueueError) in
            let batch = try reader.nextBatch(maxLines: batchSize)
            progress?(batch.isEmpty ? (size ?? reader.offset) : reader.offset, size)
            return batch
        })
    }

    // MARK: Implementation

    private static func endsWithIncompleteLine(_ path: String, _ outbox: QueueFile) throws(QueueError) -> Bool {
        let size = try outbox.size()
        guard size > 0 else { return false }
        return try QueueFile.open(path, .readOnly, what: "outbox").readBytes(at: size - 1, count: 1) != [0x0A]
    }

    private func appendLines(_ source: AnyLineSource) throws(QueueError) -> Report {
        var report = Report()
        let outboxPath = directory.outboxFile.path
        let outbox = try QueueFile.open(outboxPath, .append, what: "outbox")
        defer { outbox.close() }
        var lastSeq = try Self.greatestSeq(in: directory.outboxFile) ?? 0
        var prefix: [UInt8] = []
        // A final line without "\n" may be another program's append still in progress: give it
        // two seconds to complete before treating it as torn by a crash.
        var endsIncomplete = try Self.endsWithIncompleteLine(outboxPath, outbox)
        var waited = 0
        while endsIncomplete && waited < 20 {
            Thread.sleep(forTimeInterval: 0.1)
            waited += 1
            endsIncomplete = try Self.endsWithIncompleteLine(outboxPath, outbox)
        }
        if endsIncomplete {
            prefix = [0x0A]
            report.terminatedTornLine = true
        }
        // Where each event_id already is: its outbox seq (0 when that line has no valid seq).
        // Read after the wait, so that a line completed meanwhile counts.
        let present = try Self.eventIDs(in: directory.outboxFile)
        // event_ids of this input: appended (input line and new seq), or refused for a rule.
        var appendedIDs: [UUID: (line: Int, seq: Int64)] = [:]
        var refusedIDs: [UUID: Int] = [:]
        let validator = EventLineValidator(mode: .outbox, now: clock())
        while true {
            let batch = try source.next()
            if batch.isEmpty { break }
            var out = prefix
            prefix = []
            for line in batch {
                var bytes = line.bytes
                if line.lineNumber == 1, bytes.starts(with: Self.byteOrderMark) { bytes.removeFirst(3) }
                if bytes.last == 0x0D { bytes.removeLast() }
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                guard lastSeq < Int64.max else {
                    // Written lines stay written (each batch is fsynced): say how far it got.
                    let done = report.lastSeq.map { " (\(report.appended) line(s) appended before this one, up to seq \($0))" } ?? ""
                    throw QueueError(.invalidArgument,
                                     "cannot append input line \(line.lineNumber) to \(outboxPath): the outbox already holds seq \(Int64.max), the largest a seq can be, so no later seq exists\(done). Start a new queue directory for this agency",
                                     path: outboxPath)
                }
                let seq = lastSeq + 1
                let candidate = Self.withSeq(bytes, seq: seq)
                switch validator.validate(candidate, lineNumber: line.lineNumber, lastSeq: lastSeq) {
                case .success(let event):
                    let id = event.eventID
                    let idText = id.uuidString.lowercased()
                    if let existing = present[id] {
                        let at = existing > 0 ? "at seq \(existing)" : "on a line without a valid seq"
                        report.refused.append(RefusedLine(
                            inputLine: line.lineNumber, code: nil,
                            detail: "event_id \(idText) is already in the outbox \(at); not appended again",
                            existingSeq: existing > 0 ? existing : nil))
                        continue
                    }
                    if let earlier = appendedIDs[id] {
                        report.refused.append(RefusedLine(
                            inputLine: line.lineNumber, code: nil,
                            detail: "event_id \(idText) repeats input line \(earlier.line), just appended at seq \(earlier.seq); not appended again",
                            existingSeq: earlier.seq))
                        continue
                    }
                    if let earlier = refusedIDs[id] {
                        report.refused.append(RefusedLine(
                            inputLine: line.lineNumber, code: nil,
                            detail: "event_id \(idText) repeats input line \(earlier), which was refused; one event_id, one line",
                            existingSeq: nil))
                        continue
                    }
                    appendedIDs[id] = (line.lineNumber, seq)
                    out.append(contentsOf: candidate)
                    out.append(0x0A)
                    lastSeq = seq
                    report.appended += 1
                    if report.firstSeq == nil { report.firstSeq = seq }
                    report.lastSeq = seq
                case .failure(let reason):
                    report.refused.append(RefusedLine(inputLine: line.lineNumber, code: reason.code, detail: reason.detail,
                                                      existingSeq: nil))
                    if let id = Self.eventID(ofRefused: candidate), refusedIDs[id] == nil {
                        refusedIDs[id] = line.lineNumber
                    }
                }
            }
            if !out.isEmpty {
                try outbox.writeAll(out)
                try outbox.sync()
            }
        }
        return report
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// The `event_id` of a line the validator refused, when it has a readable one.
    private static func eventID(ofRefused line: [UInt8]) -> UUID? {
        guard line.count <= EventLineValidator.maximumLineBytes,
              case .object(let o)? = try? JSONParser.parse(line, options: .init(duplicateKeys: .lastWins)),
              case .string(let text)? = o["event_id"]
        else { return nil }
        return EventLineValidator.parseUUID(text)
    }

    /// The line with `seq` set: inserted after the opening `{` when the line has no `seq` (the
    /// rest kept byte for byte), otherwise the object rewritten with `seq` first. Lines that are
    /// not JSON objects are returned unchanged (the validator then says why).
    static func withSeq(_ line: [UInt8], seq: Int64) -> [UInt8] {
        guard line.count <= EventLineValidator.maximumLineBytes,
              case .object(var object)? = try? JSONParser.parse(line)
        else { return line }
        if object["seq"] == nil, !object.isEmpty, let brace = line.firstIndex(of: UInt8(ascii: "{")) {
            var out: [UInt8] = []
            out.reserveCapacity(line.count + 24)
            out.append(contentsOf: line[...brace])
            out.append(contentsOf: #""seq":"#.utf8)
            JSONWriter.writeInt(seq, into: &out)
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: line[(brace + 1)...])
            return out
        }
        object["seq"] = nil
        var out: [UInt8] = Array(#"{"seq":"#.utf8)
        JSONWriter.writeInt(seq, into: &out)
        for (key, value) in object.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            out.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.write(value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The greatest `seq` among the complete lines at the end of `outbox`: reads backwards from
    /// the end in a growing window (64 KiB, doubling) until the window holds at least one line
    /// with an integer `seq` ≥ 1, and returns the greatest `seq` in that window. Nil for an empty
    /// outbox or one without any. A `seq` below 1 is no seq (sync quarantines its line): counting
    /// it would number the new lines from it, and the validator would refuse them all.
    public static func greatestSeq(in outbox: URL) throws(QueueError) -> Int64? {
        guard FileManager.default.fileExists(atPath: outbox.path) else { return nil }
        let file = try QueueFile.open(outbox.path, .readOnly, what: "outbox")
        defer { file.close() }
        let size = try file.size()
        var window: Int64 = 64 << 10
        while true {
            let start = max(0, size - window)
            let bytes = try file.readBytes(at: start, count: Int(size - start))
            var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            // The last piece follows the final "\n" (empty) or is a torn line: skip it.
            lines.removeLast()
            // The first piece may be the end of a line that starts before the window.
            if start > 0, !lines.isEmpty { lines.removeFirst() }
            var best: Int64?
            for line in lines {
                guard case .object(let o)? = try? JSONParser.parse(line, options: .init(duplicateKeys: .lastWins)),
                      case .int(let s)? = o["seq"], s >= 1
                else { continue }
                best = max(best ?? s, s)
            }
            if best != nil || start == 0 { return best }
            window *= 2
        }
    }
}

// MARK: event_ids already in the outbox

extension QueueAppender {
    /// Every `event_id` of the complete lines of `outbox`, with the line's `seq` (0 when it has
    /// no integer `seq` ≥ 1). A line counts when it is valid UTF-8 and a whole JSON object with
    /// a top-level string `event_id` that is a UUID; a fragment torn by a crash does not.
    ///
    /// Read once per append, so it must be cheap for an outbox of millions of lines: the top
    /// level of each line is walked without building its values (`OutboxLineScan`), four to
    /// five times faster than parsing it in a release build (about 1.5 µs for a 600-byte
    /// `submitted` line); only unusual lines (an escape in a key or in the id, a key twice) go
    /// through the full parser.
    static func eventIDs(in outbox: URL) throws(QueueError) -> [UUID: Int64] {
        var ids: [UUID: Int64] = [:]
        guard QueueFile.exists(outbox.path) else { return ids }
        let reader = try OutboxReader(url: outbox)
        defer { reader.close() }
        while true {
            let batch = try reader.nextBatch(maxLines: 10_000)
            if batch.isEmpty { return ids }
            for line in batch {
                guard let found = OutboxLineScan.eventID(line.bytes) else { continue }
                // The first line keeps an id: that is the event the centre knows under it.
                if ids[found.id] == nil { ids[found.id] = found.seq }
            }
        }
    }
}

/// Reads the top-level `event_id` and `seq` of one outbox line without building the values
/// around them. Nested values are skipped: strings up to their closing quote (escapes
/// included), containers by matching brackets outside strings, up to the parser's depth. The
/// scan only has to tell whether the line holds an event and which one; what else is wrong
/// with it is the validator's business.
enum OutboxLineScan {
    /// `event_id` and `seq` (0 when absent or not an integer ≥ 1), or nil when the line is not
    /// a whole object with a UUID `event_id`.
    static func eventID(_ line: [UInt8]) -> (id: UUID, seq: Int64)? {
        guard JSONParser.isValidUTF8(line) else { return nil }
        let scanned: Outcome = line.withUnsafeBufferPointer { scan($0) }
        switch scanned {
        case .found(let id, let seq): return (id, seq)
        case .none: return nil
        case .unusual: return parsed(line)
        }
    }

    enum Outcome {
        case found(UUID, Int64)
        case none
        /// Legal JSON the walk does not decode (escapes in keys or in the id, a repeated key):
        /// the full parser decides.
        case unusual
    }

    /// The slow path: the same question answered by the parser sync uses.
    private static func parsed(_ line: [UInt8]) -> (id: UUID, seq: Int64)? {
        guard case .object(let o)? = try? JSONParser.parse(line),
              case .string(let text)? = o["event_id"], let id = EventLineValidator.parseUUID(text)
        else { return nil }
        if case .int(let seq)? = o["seq"], seq >= 1 { return (id, seq) }
        return (id, 0)
    }

    static func scan(_ b: UnsafeBufferPointer<UInt8>) -> Outcome {
        var walk = Walk(b: b)
        return walk.topLevel()
    }

    /// The walk over one line: a position and the few moves the top level needs. A struct
    /// with mutating methods rather than closures over a local, and brackets matched in the
    /// bits of one integer rather than an array: no allocation per line.
    private struct Walk {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(b: UnsafeBufferPointer<UInt8>) { self.b = b }

        @inline(__always) mutating func skipSpace() {
            while i < b.count {
                let c = b[i]
                guard c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D else { return }
                i += 1
            }
        }

        /// Moves past the string whose opening quote is at `i`; whether it held a backslash,
        /// or nil when it does not end (or holds a control character).
        mutating func skipString() -> Bool? {
            i += 1
            var escaped = false
            while i < b.count {
                let c = b[i]
                if c == 0x22 { i += 1; return escaped }
                if c == 0x5C { escaped = true; i += 2; continue }
                if c < 0x20 { return nil }
                i += 1
            }
            return nil
        }

        /// Moves past one value of any kind; false when it is not one.
        mutating func skipValue() -> Bool {
            guard i < b.count else { return false }
            switch b[i] {
            case 0x22:
                return skipString() != nil
            case 0x7B, 0x5B:
                // Bit k of `arrays` says whether open container k is an array. At most the
                // parser's depth, the top-level object being the first level.
                var depth = 0
                var arrays: UInt64 = 0
                while i < b.count {
                    let c = b[i]
                    switch c {
                    case 0x22:
                        guard skipString() != nil else { return false }
                        continue
                    case 0x7B, 0x5B:
                        guard depth + 1 < JSONParser.maximumDepth else { return false }
                        if c == 0x5B { arrays |= 1 << UInt64(depth) } else { arrays &= ~(1 << UInt64(depth)) }
                        depth += 1
                    case 0x7D, 0x5D:
                        guard depth > 0, (arrays >> UInt64(depth - 1)) & 1 == (c == 0x5D ? 1 : 0) else { return false }
                        depth -= 1
                        if depth == 0 { i += 1; return true }
                    default:
                        break
                    }
                    i += 1
                }
                return false
            default:
                // A number or a literal: up to the next delimiter.
                let start = i
                while i < b.count {
                    let c = b[i]
                    if c == 0x2C || c == 0x7D || c == 0x5D || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { break }
                    if c == 0x22 || c == 0x7B || c == 0x5B || c == 0x3A { return false }
                    i += 1
                }
                return i > start
            }
        }

        /// Whether `b[start..<end]` is `event_id` (1) or `seq` (2), else 0.
        func key(_ start: Int, _ end: Int) -> Int {
            switch end - start {
            case 8:
                return b[start] == 0x65 && b[start + 1] == 0x76 && b[start + 2] == 0x65 && b[start + 3] == 0x6E
                    && b[start + 4] == 0x74 && b[start + 5] == 0x5F && b[start + 6] == 0x69 && b[start + 7] == 0x64 ? 1 : 0
            case 3:
                return b[start] == 0x73 && b[start + 1] == 0x65 && b[start + 2] == 0x71 ? 2 : 0
            default:
                return 0
            }
        }

        mutating func topLevel() -> Outcome {
            skipSpace()
            guard i < b.count, b[i] == 0x7B else { return .none }
            i += 1
            skipSpace()
            guard i < b.count, b[i] != 0x7D else { return .none } // {}: no event_id
            var id: UUID?
            var sawID = false
            var seq: Int64 = 0
            var sawSeq = false
            while true {
                guard i < b.count, b[i] == 0x22 else { return .none }
                let keyStart = i + 1
                guard let keyEscaped = skipString() else { return .none }
                if keyEscaped { return .unusual }
                let which = key(keyStart, i - 1)
                skipSpace()
                guard i < b.count, b[i] == 0x3A else { return .none }
                i += 1
                skipSpace()
                guard i < b.count else { return .none }
                switch which {
                case 1:
                    if sawID { return .unusual }
                    sawID = true
                    if b[i] == 0x22 {
                        let valueStart = i + 1
                        guard let valueEscaped = skipString() else { return .none }
                        if valueEscaped { return .unusual }
                        let text = String(decoding: UnsafeBufferPointer(rebasing: b[valueStart..<(i - 1)]), as: UTF8.self)
                        id = EventLineValidator.parseUUID(text)
                    } else if !skipValue() {
                        return .none
                    }
                case 2:
                    if sawSeq { return .unusual }
                    sawSeq = true
                    let start = i
                    guard skipValue() else { return .none }
                    seq = OutboxLineScan.integer(b, start, i) ?? 0
                default:
                    guard skipValue() else { return .none }
                }
                skipSpace()
                guard i < b.count else { return .none }
                if b[i] == 0x2C {
                    i += 1
                    skipSpace()
                    continue
                }
                guard b[i] == 0x7D else { return .none }
                i += 1
                break
            }
            skipSpace()
            guard i == b.count, let id else { return .none }
            return .found(id, seq)
        }
    }

    /// `b[start..<end]` as an integer ≥ 1 written in plain digits, or nil (also on overflow).
    fileprivate static func integer(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int64? {
        guard end > start, b[start] != 0x30 else { return nil }
        var value: Int64 = 0
        for k in start..<end {
            let c = b[k]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = m.addingReportingOverflow(Int64(c - 0x30))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }
}

/// A source of batches of input lines; an empty batch means the end.
struct AnyLineSource {
    let next: () throws(QueueError) -> [OutboxLine]

    init(_ next: @escaping () throws(QueueError) -> [OutboxLine]) {
        self.next = next
    }
}

/// Input given as bytes: lines split on `\n`, the last one complete without it.
private struct ByteSource {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func lines() -> AnyLineSource {
        var pieces = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if pieces.last?.isEmpty == true { pieces.removeLast() }
        var all: [OutboxLine] = []
        var offset: Int64 = 0
        for (k, piece) in pieces.enumerated() {
            offset += Int64(piece.count + 1)
            all.append(OutboxLine(bytes: Array(piece), lineNumber: k + 1, endOffset: offset))
        }
        var done = false
        return AnyLineSource {
            if done { return [] }
            done = true
            return all
        }
    }
}
