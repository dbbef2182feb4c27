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
        /// 1-based line number in the input.
        public var inputLine: Int
        public var code: QuarantineCode
        public var detail: String
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
        switch input {
        case .file(let url):
            let file = try QueueFile.open(url.path, .readOnly, what: "input file")
            reader = OutboxReader(input: file, displayURL: url)
        case .standardInput:
            reader = OutboxReader(input: QueueFile.borrowing(fd: 0, path: "standard input"),
                                  displayURL: URL(fileURLWithPath: "/dev/stdin"))
        case .bytes(let bytes):
            let temporary = ByteSource(bytes)
            return try appendLines(temporary.lines())
        }
        return try appendLines(AnyLineSource { () throws(QueueError) in try reader.nextBatch(maxLines: batchSize) })
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
        let validator = EventLineValidator(mode: .outbox, now: clock())
        while true {
            let batch = try source.next()
            if batch.isEmpty { break }
            var out = prefix
            prefix = []
            for line in batch {
                var bytes = line.bytes
                if bytes.last == 0x0D { bytes.removeLast() }
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let seq = lastSeq + 1
                let candidate = Self.withSeq(bytes, seq: seq)
                switch validator.validate(candidate, lineNumber: line.lineNumber, lastSeq: lastSeq) {
                case .success:
                    out.append(contentsOf: candidate)
                    out.append(0x0A)
                    lastSeq = seq
                    report.appended += 1
                    if report.firstSeq == nil { report.firstSeq = seq }
                    report.lastSeq = seq
                case .failure(let reason):
                    report.refused.append(RefusedLine(inputLine: line.lineNumber, code: reason.code, detail: reason.detail))
                }
            }
            if !out.isEmpty {
                try outbox.writeAll(out)
                try outbox.sync()
            }
        }
        return report
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
        for key in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            out.append(UInt8(ascii: ","))
            JSONWriter.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.write(object[key]!, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The greatest `seq` among the complete lines at the end of `outbox`: reads backwards from
    /// the end in a growing window (64 KiB, doubling) until the window holds at least one line
    /// with an integer `seq`, and returns the greatest `seq` in that window. Nil for an empty
    /// outbox or one without any `seq`.
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
                      case .int(let s)? = o["seq"]
                else { continue }
                best = max(best ?? s, s)
            }
            if best != nil || start == 0 { return best }
            window *= 2
        }
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
