import CardCore
import Foundation
import PostgresClient
import TestSupport
import Testing

/// The examples in `docs/*.md` are real: the example queue of docs/queue-format.md syncs as the
/// page says, every JSON example parses, the JSON shapes shown are the ones the commands print,
/// and every code the product knows is documented.
///
/// Convention (stated at the top of docs/queue-format.md): a fenced block whose info string is
/// `json title=NAME` or `jsonl title=NAME` is the file NAME of the example queue; `agency.json`
/// and `outbox.jsonl` are its input and `quarantine.jsonl` what sync must write.
@Suite struct DocsExamplesTests {
    // MARK: Reading the docs

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let docs = repository.appendingPathComponent("docs")

    /// One fenced code block of a Markdown file.
    struct Block: CustomStringConvertible {
        var file: String
        /// 1-based line of the opening fence.
        var line: Int
        /// The first word of the info string (`json`, `jsonl`, `sql`, …; empty when none).
        var language: String
        /// The value of a `title=NAME` attribute in the info string.
        var title: String?
        var body: String

        var description: String { "\(file):\(line)" + (title.map { " (\($0))" } ?? "") }

        /// The non-blank lines of the body.
        var lines: [String] {
            body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }
    }

    /// Every fenced block of `url`, indented ones (inside list items) included.
    static func blocks(in url: URL) throws -> [Block] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var result: [Block] = []
        var open: (line: Int, indent: Int, info: String, body: [String])?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if var current = open {
                if trimmed == "```" {
                    let words = current.info.split(separator: " ").map(String.init)
                    let title = words.first { $0.hasPrefix("title=") }.map { String($0.dropFirst("title=".count)) }
                    result.append(Block(file: url.lastPathComponent, line: current.line, language: words.first ?? "",
                                        title: title, body: current.body.joined(separator: "\n")))
                    open = nil
                } else {
                    var content = Substring(line)
                    var dropped = 0
                    while dropped < current.indent, content.first == " " {
                        content = content.dropFirst()
                        dropped += 1
                    }
                    current.body.append(String(content))
                    open = current
                }
            } else if trimmed.hasPrefix("```") {
                let indent = line.prefix { $0 == " " }.count
                open = (index + 1, indent, String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces), [])
            }
        }
        #expect(open == nil, "\(url.lastPathComponent): a code block opened at line \(open?.line ?? 0) is never closed")
        return result
    }

    static func markdownFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: docs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "md" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func jsonBlocks() throws -> [Block] {
        try markdownFiles().flatMap(blocks(in:)).filter { ["json", "jsonl"].contains($0.language) }
    }

    static func page(_ name: String) throws -> String {
        try String(contentsOf: docs.appendingPathComponent(name), encoding: .utf8)
    }

    static func parse(_ text: String, _ what: CustomStringConvertible) throws -> JSONValue {
        do {
            return try JSONParser.parse(text)
        } catch {
            throw CLIError("\(what): not JSON: \(error)")
        }
    }

    /// The example queue's files, by title.
    static func exampleQueue() throws -> [String: Block] {
        let titled = try blocks(in: docs.appendingPathComponent("queue-format.md")).filter { $0.title != nil }
        var files: [String: Block] = [:]
        for block in titled {
            #expect(files[block.title!] == nil, "two blocks are titled \(block.title!): \(block)")
            files[block.title!] = block
        }
        for name in ["agency.json", "outbox.jsonl", "quarantine.jsonl"] {
            #expect(files[name] != nil, "docs/queue-format.md has no block titled \(name)")
        }
        return files
    }

    // MARK: Comparing shapes

    /// Nil when `doc` has the shape of `real` (the same keys everywhere, the same kinds of values,
    /// a `null` standing for any scalar, arrays compared through their elements); otherwise the
    /// path where they differ.
    static func shapeMismatch(_ doc: JSONValue, _ real: JSONValue, path: String = "$") -> String? {
        switch (doc, real) {
        case (.object(let a), .object(let b)):
            if Set(a.keys) != Set(b.keys) {
                let missing = Set(b.keys).subtracting(a.keys).sorted(), extra = Set(a.keys).subtracting(b.keys).sorted()
                return "\(path): the example lacks \(missing), has extra \(extra)"
            }
            for key in a.keys.sorted() {
                if let m = shapeMismatch(a[key]!, b[key]!, path: path + "." + key) { return m }
            }
            return nil
        case (.array(let a), .array(let b)):
            guard let model = b.first else { return nil }
            for (k, item) in a.enumerated() {
                if let m = shapeMismatch(item, model, path: path + "[\(k)]") { return m }
            }
            return nil
        case (.null, .null), (.null, .int), (.null, .double), (.null, .string), (.null, .bool),
             (.int, .null), (.double, .null), (.string, .null), (.bool, .null),
             (.int, .int), (.int, .double), (.double, .int), (.double, .double),
             (.string, .string), (.bool, .bool):
            return nil
        default:
            return "\(path): the example holds \(doc.typeName), the command prints \(real.typeName)"
        }
    }

    // MARK: Tests

    @Test("every JSON example in docs/*.md parses (JSON-lines blocks line by line)")
    func everyJSONExampleParses() throws {
        let blocks = try Self.jsonBlocks()
        #expect(blocks.count >= 10, "found only \(blocks.count) JSON blocks in docs/")
        for block in blocks {
            if block.language == "jsonl" {
                #expect(!block.lines.isEmpty, "\(block) is empty")
                for (k, line) in block.lines.enumerated() {
                    do {
                        let value = try Self.parse(line, "\(block), line \(k + 1)")
                        #expect(value.objectValue != nil, "\(block), line \(k + 1): not a JSON object")
                    } catch {
                        Issue.record("\(error)")
                    }
                }
            } else {
                do {
                    _ = try Self.parse(block.body, block)
                } catch {
                    Issue.record("\(error)")
                }
            }
        }
    }

    @Test("every quarantine code, conflict kind, outcome, status and event type is documented")
    func everyCodeIsDocumented() throws {
        let queueFormat = try Self.page("queue-format.md")
        let lifecycle = try Self.page("lifecycle.md")
        func undocumented(_ names: [String], in page: String, as pattern: (String) -> String = { "`\($0)`" }) -> [String] {
            names.filter { !page.contains(pattern($0)) }
        }
        let codes = undocumented(QuarantineCode.allCases.map(\.rawValue), in: queueFormat)
        #expect(codes.isEmpty, "docs/queue-format.md does not name the quarantine codes \(codes)")
        let sections = undocumented(EventType.agencyTypes.map(\.rawValue), in: queueFormat) { "#### `\($0)`" }
        #expect(sections.isEmpty, "docs/queue-format.md has no data section for \(sections)")
        let kinds = undocumented(ConflictKind.allCases.map(\.rawValue), in: lifecycle)
        #expect(kinds.isEmpty, "docs/lifecycle.md does not name the conflict kinds \(kinds)")
        let outcomes = undocumented(ConflictOutcome.allCases.map(\.rawValue), in: lifecycle)
        #expect(outcomes.isEmpty, "docs/lifecycle.md does not name the conflict outcomes \(outcomes)")
        let statuses = undocumented(ApplicationStatus.allCases.map(\.rawValue), in: lifecycle)
        #expect(statuses.isEmpty, "docs/lifecycle.md does not name the statuses \(statuses)")
        let types = undocumented(EventType.allCases.map(\.rawValue), in: lifecycle)
        #expect(types.isEmpty, "docs/lifecycle.md does not name the event types \(types)")
    }

    @Test("the example queue syncs as docs/queue-format.md says, and the JSON shapes shown are the real ones")
    func exampleQueueSyncsAsDocumented() throws {
        let files = try Self.exampleQueue()
        let agencyBlock = try #require(files["agency.json"])
        let outboxBlock = try #require(files["outbox.jsonl"])
        let quarantineBlock = try #require(files["quarantine.jsonl"])

        // The example's lines, and which of them the page says are quarantined.
        let outboxLines = outboxBlock.body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { !$0.isEmpty }
        var expectedQuarantine: [Int: (error: String, raw: String)] = [:]
        for line in quarantineBlock.lines {
            let entry = try Self.parse(line, quarantineBlock)
            let number = try #require(entry["line"]?.intValue, "a quarantine entry without \"line\": \(line)")
            let error = try #require(entry["error"]?.stringValue, "a quarantine entry without \"error\": \(line)")
            let raw = try #require(entry["raw"]?.stringValue, "a quarantine entry without \"raw\": \(line)")
            #expect(QuarantineCode(rawValue: error) != nil, "the example names \(error), which is not a quarantine code")
            expectedQuarantine[Int(number)] = (error, raw)
        }
        #expect(!expectedQuarantine.isEmpty, "the example quarantines no line")
        var validIDs: Set<String> = []
        var validTypes: Set<String> = []
        for (index, line) in outboxLines.enumerated() {
            if let expected = expectedQuarantine[index + 1] {
                #expect(expected.raw == line, "the quarantine example's raw is not outbox line \(index + 1) as written")
                continue
            }
            let event = try Self.parse(line, "outbox.jsonl line \(index + 1)")
            validIDs.insert(try #require(event["event_id"]?.stringValue).lowercased())
            validTypes.insert(try #require(event["type"]?.stringValue))
        }
        #expect(expectedQuarantine.keys.allSatisfy { (1...outboxLines.count).contains($0) })
        for type in EventType.agencyTypes {
            #expect(validTypes.contains(type.rawValue), "the example queue has no valid \(type.rawValue) line")
        }
        let agency = try Self.parse(agencyBlock.body, agencyBlock)
        let code = try #require(agency["agency"]?["code"]?.stringValue)

        // Write the queue and sync it against a fresh central database.
        let dir = try TemporaryDirectory(prefix: "cardsync-docs")
        defer { dir.remove() }
        let queue = dir.url.appendingPathComponent(code)
        try FileManager.default.createDirectory(at: queue, withIntermediateDirectories: true)
        try Data((agencyBlock.body + "\n").utf8).write(to: queue.appendingPathComponent("agency.json"))
        try Data(outboxLines.map { $0 + "\n" }.joined().utf8).write(to: queue.appendingPathComponent("outbox.jsonl"))
        let db = try TestDatabase.migratedDatabase()
        let sync = try CLIRunner.run(["sync", queue.path, "--json", "--database", db])
        #expect(sync.status == 0, "sync failed: \(sync.stderr)")
        let summary = try Self.parse(sync.stdout, "sync --json")
        let row = try #require(summary["agencies"]?.arrayValue?.first)
        #expect(row["agency_code"]?.stringValue == code)
        #expect(row["pushed"]?.intValue == Int64(validIDs.count), "sync --json: \(sync.stdout)")
        #expect(row["quarantined"]?.intValue == Int64(expectedQuarantine.count), "sync --json: \(sync.stdout)")
        #expect(row["already_present"]?.intValue == 0)

        // Exactly the documented quarantine entries.
        let written = try String(contentsOf: queue.appendingPathComponent("quarantine.jsonl"), encoding: .utf8)
        var actual: [Int: (error: String, raw: String)] = [:]
        for line in written.split(separator: "\n").map(String.init) {
            let entry = try Self.parse(line, "quarantine.jsonl")
            let number = Int(try #require(entry["line"]?.intValue))
            actual[number] = (try #require(entry["error"]?.stringValue), try #require(entry["raw"]?.stringValue))
            let detail = entry["detail"]?.stringValue ?? ""
            #expect(detail.count > 0, "line \(number): no detail")
        }
        #expect(Set(actual.keys) == Set(expectedQuarantine.keys), "quarantined lines: \(written)")
        for (number, expected) in expectedQuarantine {
            #expect(actual[number]?.error == expected.error,
                    "line \(number) was quarantined as \(actual[number]?.error ?? "nothing"), the page says \(expected.error)")
            #expect(actual[number]?.raw == expected.raw, "line \(number): quarantine.jsonl's raw differs from the line")
        }

        // Every valid line is in the ledger, once.
        let connection = try Connection(conninfo: db)
        let rows = try connection.query("SELECT event_id::text AS id FROM cardsync.ledger WHERE agency_code = $1", [.text(code)])
        let ledger = try rows.map { try $0.decode(String.self, column: "id") }
        #expect(ledger.count == validIDs.count, "ledger rows of \(code): \(ledger.count), valid example lines: \(validIDs.count)")
        #expect(Set(ledger) == validIDs)

        // The JSON shapes shown in docs/ are the ones the commands print, on this database.
        var realDocuments: [String: JSONValue] = ["sync": summary]
        for (name, arguments) in [
            ("monthly", ["report", "monthly", "--month", "2026-10"]),
            ("backlog", ["report", "backlog"]),
            ("throughput", ["report", "throughput", "--from", "2026-10-01", "--to", "2026-10-31"]),
        ] {
            let out = try CLIRunner.run(arguments + ["--format", "json", "--database", db])
            #expect(out.status == 0, "\(arguments): \(out.stderr)")
            realDocuments[name] = try Self.parse(out.stdout, arguments.joined(separator: " "))
        }
        var compared: Set<String> = []
        for block in try Self.jsonBlocks() where block.language == "json" {
            let value = try Self.parse(block.body, block)
            let kind: String
            if let report = value["report"]?.stringValue {
                kind = report
            } else if value["totals"] != nil, value["agencies"]?.arrayValue?.first?["pushed"] != nil {
                kind = "sync"
            } else {
                continue
            }
            let real = try #require(realDocuments[kind], "\(block): a \(kind) document, which this test does not produce")
            #expect(Self.shapeMismatch(value, real) == nil, "\(block): \(Self.shapeMismatch(value, real) ?? "")")
            compared.insert(kind)
        }
        #expect(compared == ["sync", "monthly", "backlog", "throughput"], "JSON shapes compared: \(compared.sorted())")
    }
}
