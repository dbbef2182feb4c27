import CardCore
import CardReports
import Foundation
import TestSupport
import Testing

/// Issue #12, the command line as a clerk meets it: examples in every --help, one spelling for
/// output formats, `sync` given a shell pattern, the demo's database by a short name, Chinese
/// with --lang zh, the quarantine listed, progress bars on a terminal.
@Suite(.serialized) struct ClerkCLITests {
    // MARK: help and formats (no database)

    /// Commands without examples: `help` only shows another command's help.
    static let examplesPendingElsewhere: Set<String> = ["cardsync help"]
    /// Commands allowed only `--json` or only `--format`: none.
    static let jsonOnlyElsewhere: Set<String> = []

    struct CommandInfo {
        var path: String
        var discussion: String
        var options: Set<String>
    }

    /// Every command of the tree, from ArgumentParser's own description of it.
    static func commands() throws -> [CommandInfo] {
        let dump = try CLIRunner.run(["--experimental-dump-help"])
        #expect(dump.status == 0, "\(dump.stderr)")
        let root = try #require(JSONParser.parse(Array(dump.stdout.utf8))["command"])
        var found: [CommandInfo] = []
        func walk(_ command: JSONValue, _ path: [String]) {
            let here = path + [command["commandName"]?.stringValue ?? "?"]
            var options: Set<String> = []
            for argument in command["arguments"]?.arrayValue ?? [] {
                for name in argument["names"]?.arrayValue ?? [] where name["kind"]?.stringValue == "long" {
                    if let n = name["name"]?.stringValue { options.insert(n) }
                }
            }
            found.append(CommandInfo(path: here.joined(separator: " "), discussion: command["discussion"]?.stringValue ?? "",
                                     options: options))
            for sub in command["subcommands"]?.arrayValue ?? [] { walk(sub, here) }
        }
        walk(root, [])
        return found
    }

    @Test("every command's --help ends with examples that call cardsync")
    func helpHasExamples() throws {
        let commands = try Self.commands()
        #expect(commands.count > 30, "the command tree was not read")
        for command in commands where !Self.examplesPendingElsewhere.contains(command.path) {
            guard let examples = command.discussion.range(of: "Examples:") else {
                Issue.record("\(command.path) --help has no examples")
                continue
            }
            #expect(command.discussion[examples.upperBound...].contains("cardsync "), "\(command.path): the examples call no command")
        }
        // What a person sees, not only the parser's description.
        for path in [["sync"], ["queue", "quarantine"], ["bureau", "import"], ["conflicts", "show"]] {
            let help = try CLIRunner.run(path + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Examples:\n  cardsync \(path.joined(separator: " "))"), "\(path) --help: \(help.stdout)")
        }
    }

    @Test("every command that prints JSON takes both --format and --json")
    func oneSpellingForFormats() throws {
        for command in try Self.commands() where command.options.contains("json") || command.options.contains("format") {
            if Self.jsonOnlyElsewhere.contains(command.path) || command.path.hasPrefix("cardsync bench") { continue }
            #expect(command.options.contains("format"), "\(command.path) has --json but no --format")
            #expect(command.options.contains("json"), "\(command.path) has --format but no --json")
        }
    }

    @Test("--json is --format json; with another --format it is a usage error naming both")
    func jsonIsFormatJSON() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-fmt")
        let queue = home.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        let short = try CLIRunner.run(["queue", "status", queue, "--json"])
        let long = try CLIRunner.run(["queue", "status", queue, "--format", "json"])
        #expect(short.status == 0 && long.status == 0)
        #expect(short.stdout == long.stdout)
        #expect(try JSONParser.parse(Array(long.stdout.utf8))["agency_code"]?.stringValue == "CS-FR-001")
        let both = try CLIRunner.run(["queue", "status", queue, "--json", "--format", "text"])
        #expect(both.status == 64)
        #expect(both.stderr.contains("--json and --format text contradict each other"), "\(both.stderr)")
        // The contract's conflicts list --format keeps its csv and gains --json; checked while
        // parsing, before any database is used.
        let list = try CLIRunner.run(["conflicts", "list", "--json", "--format", "csv", "--database", "host=/nonexistent"])
        #expect(list.status == 64, "\(list.stderr)")
        #expect(list.stderr.contains("--format csv"))
        let bad = try CLIRunner.run(["sync", queue, "--format", "yaml"])
        #expect(bad.status == 64)
    }

    // MARK: Chinese and the quarantine (files only)

    /// The reports' word for every status, in both languages (`ReportLanguage.statusWord`).
    static func reportStatusWords() -> [(en: String, zh: String)] {
        ApplicationStatus.allCases.map { (ReportLanguage.en.statusWord($0), ReportLanguage.zh.statusWord($0)) }
    }

    /// A queue with one submitted application and a quarantine written by hand (or by an older
    /// cardsync) whose detail holds an identity number and a phone number in full.
    static func queueWithQuarantine(_ home: TemporaryDirectory) throws -> String {
        let queue = home.path + "/CS-FR-001"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001", "--name", "芙蓉区网点"]).status == 0)
        let app = UUID().uuidString.lowercased()
        let line = #"{"seq":1,"event_id":"\#(UUID().uuidString.lowercased())","application_id":"\#(app)","type":"submitted","occurred_at":"2026-10-01T09:00:00+08:00","data":{}}"#
        try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: queue + "/outbox.jsonl"))
        let quarantine = [
            #"{"line":1,"raw":"{\"child\":{\"id_number\":\"43010220200501001X\"}}","error":"invalid_id_number","detail":"child.id_number 43010220200501001X: the check character is wrong"}"#,
            #"{"line":2,"raw":"{\"phone\":\"13812345678\"}","error":"bad_phone","detail":"guardian.phone 13812345678 / 0731-84561234 on 2026-10-01"}"#,
            #"{"line":3,"raw":"x","error":"made_up_code","detail":"?"}"#,
        ]
        try Data((quarantine.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: queue + "/quarantine.jsonl"))
        return queue
    }

    @Test("queue status: statuses as the reports' words, in Chinese with --lang zh, and what to do with quarantined lines")
    func queueStatusInWords() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-zh")
        let queue = try Self.queueWithQuarantine(home)
        // Every status is listed (with its count) by the reports' word for it.
        let words = Self.reportStatusWords()
        let en = try CLIRunner.run(["queue", "status", queue])
        let zh = try CLIRunner.run(["queue", "status", queue, "--lang", "zh"])
        #expect(en.status == 0 && zh.status == 0, "\(en.stderr)\(zh.stderr)")
        for (english, chinese) in words {
            #expect(en.stdout.contains(english), "queue status lacks the reports' word \(english)")
            #expect(zh.stdout.contains(chinese), "queue status --lang zh lacks the reports' word \(chinese)")
        }
        for code in ApplicationStatus.allCases.map(\.rawValue) where code.contains("_") || code == "submitted" {
            #expect(!en.stdout.contains(code), "the status code \(code) is printed instead of a word")
        }
        #expect(zh.stdout.contains("经办机构 CS-FR-001（芙蓉区网点）"))
        #expect(zh.stdout.contains("隔离的行：3"))
        #expect(zh.stdout.contains("cardsync queue quarantine \(queue) --lang zh"))
        #expect(en.stdout.contains("See why: cardsync queue quarantine \(queue)"))
        #expect(en.stdout.contains("new seq and a new event_id"))
        let bad = try CLIRunner.run(["queue", "status", queue, "--lang", "fr"])
        #expect(bad.status == 64)
    }

    @Test("queue quarantine lists line, code and reason in words, never an identity or phone number in full nor the line itself")
    func quarantineListed() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-q")
        let queue = try Self.queueWithQuarantine(home)
        let en = try CLIRunner.run(["queue", "quarantine", queue])
        let zh = try CLIRunner.run(["queue", "quarantine", queue, "--lang", "zh"])
        let json = try CLIRunner.run(["queue", "quarantine", queue, "--format", "json"])
        for out in [en, zh, json] {
            #expect(out.status == 0, "\(out.stderr)")
            for secret in ["43010220200501001X", "13812345678", "84561234", "0220200501"] {
                #expect(!out.stdout.contains(secret), "prints \(secret): \(out.stdout)")
            }
            #expect(!out.stdout.contains("\"child\""), "the quarantined line itself is printed")
        }
        #expect(en.stdout.contains("**************001X"))
        #expect(en.stdout.contains("the identity number is not a valid 18-character resident identity number"))
        #expect(en.stdout.contains("unknown reason (made_up_code)"))
        #expect(en.stdout.contains("2026-10-01"), "dates are not personal and stay readable")
        #expect(zh.stdout.contains("电话号码既不是大陆手机号码也不是固定电话号码"))
        #expect(zh.stdout.contains("行号"))
        // Off a terminal the text fits 100 columns, as the other tables do; --wide does not wrap.
        for out in [en, zh] {
            let widest = out.stdout.components(separatedBy: "\n").map(TerminalText.displayWidth).max() ?? 0
            #expect(widest <= 100, "a line of \(widest) columns")
        }
        let wide = try CLIRunner.run(["queue", "quarantine", queue, "--wide"])
        #expect(wide.stdout.components(separatedBy: "\n").contains { $0.hasPrefix("   2  bad_phone") && $0.contains("on 2026-10-01") })
        let doc = try JSONParser.parse(Array(json.stdout.utf8))
        let rows = doc["quarantined"]?.arrayValue ?? []
        #expect(rows.map { $0["line"]?.intValue } == [1, 2, 3])
        #expect(rows.map { $0["error"]?.stringValue } == ["invalid_id_number", "bad_phone", "made_up_code"])
        #expect(rows[1]["reason"]?.stringValue?.contains("phone") == true)

        let empty = try TemporaryDirectory(prefix: "cardsync-q0")
        #expect(try CLIRunner.run(["queue", "init", empty.path + "/q", "--agency", "CS-YL-002"]).status == 0)
        let none = try CLIRunner.run(["queue", "quarantine", empty.path + "/q"])
        #expect(none.status == 0)
        #expect(none.stdout.contains("No quarantined lines"))
        let notQueue = try CLIRunner.run(["queue", "quarantine", empty.path])
        #expect(notQueue.status == 1)
        #expect(notQueue.stderr.contains("queue init"), "\(notQueue.stderr)")
    }

    @Test("queue append draws a progress bar on a terminal's stderr and none off one")
    func queueAppendProgress() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-append")
        let gen = try CLIRunner.run(["generate", home.path + "/city", "--agencies", "1", "--applications", "3000", "--end", "2026-11-01"])
        #expect(gen.status == 0, "\(gen.stderr)")
        let source = try #require(try Self.generatedQueues(home.path + "/city").first) + "/outbox.jsonl"
        for (name, terminal) in [("a", true), ("b", false)] {
            let queue = home.path + "/" + name
            #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
            let arguments = ["queue", "append", queue, source]
            if terminal {
                let out = try PseudoTerminal.run(arguments)
                #expect(out.status == 0, "\(out.terminal)")
                #expect(out.stdout.hasPrefix("Appended "), "\(out.stdout)")
                #expect(out.terminal.contains("queue append "), "no progress bar: \(out.terminal.debugDescription)")
                #expect(out.terminal.contains("100%"))
            } else {
                let out = try CLIRunner.run(arguments)
                #expect(out.status == 0, "\(out.stderr)")
                #expect(out.stderr.isEmpty, "progress off a terminal: \(out.stderr.debugDescription)")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: home.path + "/a/outbox.jsonl"))
            == Data(contentsOf: URL(fileURLWithPath: home.path + "/b/outbox.jsonl")))
    }

    @Test("queue status of a large queue says on a terminal what it is reading, and nothing off one")
    func queueStatusOfALargeQueueSaysSo() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-large")
        let queue = home.path + "/q"
        #expect(try CLIRunner.run(["queue", "init", queue, "--agency", "CS-FR-001"]).status == 0)
        // 6 MB of lines the local view skips (not events): only the size matters here.
        let line = #"{"note":""# + String(repeating: "x", count: 90) + "\"}\n"
        try Data(String(repeating: line, count: 60_000).utf8).write(to: URL(fileURLWithPath: queue + "/outbox.jsonl"))
        let onTerminal = try PseudoTerminal.run(["queue", "status", queue])
        #expect(onTerminal.status == 0, "\(onTerminal.terminal)")
        #expect(onTerminal.terminal.contains("queue status reading 6 MB of outbox and inbox"), "\(onTerminal.terminal.debugDescription)")
        #expect(onTerminal.stdout.contains("Unsynced events: 60000"))
        let off = try CLIRunner.run(["queue", "status", queue])
        #expect(off.stderr.isEmpty)
    }

    // MARK: with a central database

    /// A generated city of two agencies (invalid lines and a duplicate pair included), synced.
    struct City {
        let db: String
        let dir: TemporaryDirectory
        let root: String
        let queues: [String]
    }

    static func city(seed: String = "3") throws -> City {
        let db = try TestDatabase.migratedDatabase()
        let dir = try TemporaryDirectory(prefix: "cardsync-clerk")
        let root = dir.path + "/city"
        let gen = try CLIRunner.run(["generate", root, "--agencies", "2", "--applications", "300", "--faults", "0.03",
                                     "--seed", seed, "--end", "2026-11-01"])
        #expect(gen.status == 0, "\(gen.stderr)")
        let queues = try Self.generatedQueues(root)
        #expect(queues.count == 2)
        return City(db: db, dir: dir, root: root, queues: queues)
    }

    /// The queue directories `generate` wrote under `root`.
    static func generatedQueues(_ root: String) throws -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        for base in [root, root + "/queues"] {
            for name in ((try? fm.contentsOfDirectory(atPath: base)) ?? []).sorted()
            where fm.fileExists(atPath: base + "/" + name + "/agency.json") {
                found.append(base + "/" + name)
            }
        }
        return found
    }

    @Test("sync DIR/* skips the plain files beside the queues with a note; a directory that is not a queue stays an error with advice")
    func syncGivenAPattern() throws {
        let city = try Self.city()
        let everything = try FileManager.default.contentsOfDirectory(atPath: city.root).sorted().map { city.root + "/" + $0 }
        let files = everything.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        #expect(!files.isEmpty, "generate wrote no files beside its queues")
        // generate keeps its queues in a folder of their own: DIR/queues/* names queues only.
        let inFolder = try FileManager.default.contentsOfDirectory(atPath: city.root + "/queues").sorted().map { city.root + "/queues/" + $0 }
        #expect(inFolder == city.queues)
        #expect(!files.contains { $0.hasPrefix(city.root + "/queues/") })
        let sync = try CLIRunner.run(["sync"] + files + city.queues + ["--database", city.db, "--format", "json"])
        #expect(sync.status == 0, "\(sync.stderr)")
        for file in files { #expect(sync.stderr.contains("note: skipping \(file): a file, not an agency queue directory"), "\(sync.stderr)") }
        let doc = try JSONParser.parse(Array(sync.stdout.utf8))
        #expect(doc["agencies"]?.arrayValue?.count == 2)
        #expect(doc["errors"] == nil)

        let clean = try CLIRunner.run(["sync"] + inFolder + ["--database", city.db])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!clean.stderr.contains("note:"), "\(clean.stderr)")

        // Only files: nothing to do, a usage error.
        let onlyFiles = try CLIRunner.run(["sync"] + files + ["--database", city.db])
        #expect(onlyFiles.status == 64, "\(onlyFiles.stderr)")
        #expect(onlyFiles.stderr.contains("none of the paths given is an agency queue directory"))
        #expect(onlyFiles.stderr.contains("are files"))

        // A directory that is not a queue: the others sync, it is named with what to do.
        let stray = city.dir.path + "/not-a-queue"
        try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: true)
        let mixed = try CLIRunner.run(["sync", city.queues[0], stray, "--database", city.db])
        #expect(mixed.status == 1)
        #expect(mixed.stdout.contains(URL(fileURLWithPath: city.queues[0]).lastPathComponent))
        #expect(mixed.stderr.contains("\(stray) is not an agency queue: it has no agency.json"), "\(mixed.stderr)")
        #expect(mixed.stderr.contains("cardsync queue init \(stray) --agency CODE"))
        // The folder that holds the queues: name them.
        let parent = URL(fileURLWithPath: city.queues[0]).deletingLastPathComponent().path
        let folder = try CLIRunner.run(["sync", parent, "--database", city.db])
        #expect(folder.status == 1)
        #expect(folder.stderr.contains("cardsync sync \(parent)/*"), "\(folder.stderr)")
        let missing = try CLIRunner.run(["reconcile", city.dir.path + "/nowhere", city.queues[1], "--database", city.db])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")

        // What sync quarantined is what queue quarantine lists.
        let quarantined = Int(doc["agencies"]?.arrayValue?.first?["quarantined"]?.intValue ?? -1)
        let listed = try CLIRunner.run(["queue", "quarantine", city.queues[0], "--json"])
        #expect(try JSONParser.parse(Array(listed.stdout.utf8))["quarantined"]?.arrayValue?.count == quarantined)
    }

    @Test("conflicts show --lang zh: kind, statuses and headings in Chinese, numbers masked; --json unchanged")
    func conflictsShowInChinese() throws {
        let city = try Self.city(seed: "4")
        #expect(try CLIRunner.run(["sync"] + city.queues + ["--database", city.db]).status == 0)
        let list = try CLIRunner.run(["conflicts", "list", "--json", "--database", city.db])
        let conflicts = try JSONParser.parse(Array(list.stdout.utf8))["conflicts"]?.arrayValue ?? []
        let duplicate = try #require(conflicts.first { $0["kind"]?.stringValue == "duplicate_application" }?["conflict_id"]?.intValue,
                                     "the generated city has no duplicate application")
        let zh = try CLIRunner.run(["conflicts", "show", String(duplicate), "--lang", "zh", "--database", city.db])
        let en = try CLIRunner.run(["conflicts", "show", String(duplicate), "--database", city.db])
        #expect(zh.status == 0 && en.status == 0, "\(zh.stderr)\(en.stderr)")
        #expect(zh.stdout.contains("冲突 \(duplicate)：重复申请（duplicate_application），未解决"), "\(zh.stdout)")
        #expect(zh.stdout.contains("暂挂"))
        #expect(zh.stdout.contains("解决方法："))
        #expect(en.stdout.contains("Conflict \(duplicate): duplicate application (duplicate_application), open"))
        #expect(en.stdout.contains("On hold"))
        #expect(!en.stdout.contains("on_hold"), "a status is printed as its code")
        #expect(en.stdout.contains("now On hold; kept, it returns to"))
        #expect(zh.stdout.contains("当前状态：暂挂"))
        #expect(!zh.stdout.contains("Kept by the duplicate rule"), "English findings in the Chinese text")
        for out in [zh.stdout, en.stdout] {
            #expect(out.range(of: #"[0-9]{17}[0-9Xx]"#, options: .regularExpression) == nil, "an identity number in full")
            #expect(out.range(of: #"1[3-9][0-9]{9}"#, options: .regularExpression) == nil, "a phone number in full")
        }
        let json = try CLIRunner.run(["conflicts", "show", String(duplicate), "--format", "json", "--lang", "zh", "--database", city.db])
        #expect(try JSONParser.parse(Array(json.stdout.utf8))["kind"]?.stringValue == "duplicate_application")
    }

    @Test("bureau import draws a progress bar on a terminal's stderr, none off one, and records the same either way")
    func bureauImportProgress() throws {
        let onTerminal = try Self.city(seed: "5")
        let offTerminal = try Self.city(seed: "5")
        var results: [JSONValue] = []
        for (city, terminal) in [(onTerminal, true), (offTerminal, false)] {
            #expect(try CLIRunner.run(["sync"] + city.queues + ["--database", city.db]).status == 0)
            let relative = try #require(FileManager.default.enumerator(atPath: city.root)?.allObjects
                .compactMap { $0 as? String }.first { $0.hasSuffix("bureau-decisions.jsonl") })
            let decisions = city.root + "/" + relative
            let arguments = ["bureau", "import", decisions, "--format", "json", "--database", city.db]
            if terminal {
                let out = try PseudoTerminal.run(arguments)
                #expect(out.status == 0, "\(out.terminal)")
                #expect(out.terminal.contains("bureau import "), "no progress bar on the terminal: \(out.terminal.debugDescription)")
                #expect(out.terminal.contains("100%"))
                #expect(out.terminal.contains("\r\u{1B}[K"), "the bar's line is not cleared at the end")
                results.append(try JSONParser.parse(Array(out.stdout.utf8)))
            } else {
                let out = try CLIRunner.run(arguments)
                #expect(out.status == 0, "\(out.stderr)")
                #expect(out.stderr.isEmpty, "progress off a terminal: \(out.stderr.debugDescription)")
                results.append(try JSONParser.parse(Array(out.stdout.utf8)))
            }
        }
        #expect(results[0]["recorded"]?.intValue ?? 0 > 0)
        #expect(results[0] == results[1], "the import on a terminal (smaller batches) recorded something else")
    }

    @Test("after cardsync demo: --database demo and CARDSYNC_DATABASE_URL=demo reach its database, also after db stop")
    func demoDatabaseByName() throws {
        let home = try TemporaryDirectory(prefix: "cardsync-demo")
        let env = ["CARDSYNC_HOME": home.path]
        defer { _ = try? CLIRunner.run(["db", "stop"], environment: env) }
        // Before any demo: the alias says what to do.
        let early = try CLIRunner.run(["agency", "list", "--database", "demo"], environment: env)
        #expect(early.status == 1)
        #expect(early.stderr.contains("run cardsync demo first"), "\(early.stderr)")
        // A mistyped alias is not a connection string either: the hint names the word it takes.
        let typo = try CLIRunner.run(["agency", "list", "--database", "dmeo"], environment: env)
        #expect(typo.status == 1)
        #expect(typo.stderr.contains("the one word it takes is demo"), "\(typo.stderr)")

        let demo = try CLIRunner.run(["demo", "--agencies", "2", "--applications", "120", "--months", "2"], environment: env)
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.contains("  export CARDSYNC_DATABASE_URL=demo\n"))
        #expect(demo.stdout.contains("  cardsync conflicts list\n"))
        #expect(demo.stdout.contains("  cardsync db stop"))
        #expect(!demo.stdout.contains("postgresql://"), "the demo's hints print a socket URI")
        let queue = try #require(demo.stdout.components(separatedBy: "\n").first { $0.hasPrefix("  cardsync queue status ") })
            .replacingOccurrences(of: "  cardsync queue status ", with: "")
        #expect(FileManager.default.fileExists(atPath: queue + "/agency.json"), "the hinted queue \(queue) is not a queue")

        let byFlag = try CLIRunner.run(["agency", "list", "--database", "demo", "--json"], environment: env)
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        #expect(try JSONParser.parse(Array(byFlag.stdout.utf8))["agencies"]?.arrayValue?.count == 2)
        var exported = env
        exported["CARDSYNC_DATABASE_URL"] = "demo"
        let byEnvironment = try CLIRunner.run(["conflicts", "list", "--json"], environment: exported)
        #expect(byEnvironment.status == 0, "\(byEnvironment.stderr)")
        // The default database of the same cluster is another one: the demo's agencies are not there.
        let plain = try CLIRunner.run(["agency", "list", "--json"], environment: env)
        #expect(try JSONParser.parse(Array(plain.stdout.utf8))["agencies"]?.arrayValue?.count == 0)

        let stop = try CLIRunner.run(["db", "stop"], environment: exported)
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(stop.stdout.contains("Stopped the embedded cluster"))
        let again = try CLIRunner.run(["agency", "list", "--json"], environment: exported)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try JSONParser.parse(Array(again.stdout.utf8))["agencies"]?.arrayValue?.count == 2)
    }
}
