import ArgumentParser
import CardCore
import CardReports
import CardSync
import Foundation

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Create an agency queue, append events to it, and show its local view.",
        discussion: """
            Examples:
              cardsync queue init /srv/queues/CS-FR-001 --agency CS-FR-001 --name "芙蓉区社保卡服务网点"
              cardsync queue append /srv/queues/CS-FR-001 events.jsonl
              cardsync queue status /srv/queues/CS-FR-001 --lang zh
              cardsync queue quarantine /srv/queues/CS-FR-001
            """,
        subcommands: [Init.self, Append.self, Status.self, Quarantine.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an agency queue directory (safe to run twice).",
            discussion: """
                agency.json is written once. Run again on an existing queue, it changes nothing; an option that \
                contradicts agency.json (another code, name, district or channel) is refused with exit 1, and an \
                option left out keeps what the file holds.

                Examples:
                  cardsync queue init /srv/queues/CS-FR-001 --agency CS-FR-001 --name "芙蓉区社保卡服务网点" --district 芙蓉区
                  cardsync queue init /srv/queues/CS-ONLINE --agency CS-ONLINE --channel online
                """)
        @Argument(help: "Queue directory.") var dir: String
        @Option(help: "Agency code, e.g. CS-FR-001.", transform: AgencyCode.argument) var agency: AgencyCode
        @Option(help: "Agency name (default: the code).") var name: String?
        @Option(help: "District.") var district: String?
        // Optional, so that a re-run can tell "not given" from "given as counter".
        @Option(help: "counter or online (default: counter).") var channel: AgencyChannel?

        func run() throws {
            let result = try QueueDirectory.initialize(at: URL(fileURLWithPath: dir), code: agency.rawValue, name: name,
                                                       district: district, channel: channel)
            if result.created {
                print("Queue for agency \(agency) ready in \(result.queue.path).")
            } else {
                print("The queue of agency \(agency) already exists in \(result.queue.path); nothing changed.")
            }
        }
    }

    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate event lines and append the valid ones to the outbox, assigning seq.",
            discussion: """
                Reads FILE, or standard input when FILE is - or absent. Invalid lines are refused with their error \
                code (exit 1); the valid ones are appended. A line whose event_id the outbox already holds (or that \
                repeats an earlier line of the input) is refused as duplicate_event_id, naming the seq that holds it: \
                appending the same file again appends nothing twice.

                Examples:
                  cardsync queue append /srv/queues/CS-FR-001 events.jsonl
                  counter-export | cardsync queue append /srv/queues/CS-FR-001 -
                  cardsync queue append /srv/queues/CS-FR-001 corrected.jsonl --format json
                """)
        @Argument(help: "Queue directory.") var dir: String
        @Argument(help: "File of event lines, or - for standard input.") var file: String?
        @OptionGroup var output: OutputFormatOptions

        func run() throws {
            let input: QueueAppender.Input
            if let file, file != "-" { input = .file(URL(fileURLWithPath: file)) } else { input = .standardInput }
            var appender = QueueAppender(directory: QueueDirectory(path: dir))
            let bar = ProgressBar("queue append")
            appender.progress = { done, total in
                // Standard input has no size: the bar then shows how much was read.
                let fraction = total.map { $0 > 0 ? Double(done) / Double($0) : 1 } ?? 0
                bar.update(fraction, note: total.map { BureauCommand.Import.megabytes(done, of: $0) }
                                                  ?? String(format: "%.1f MB read", Double(done) / 1_000_000))
            }
            let report = try appender.append(input)
            bar.finish()
            if output.isJSON {
                print(JSONWriter.object([
                    ("appended", .int(Int64(report.appended))),
                    ("first_seq", report.firstSeq.map(JSONValue.int) ?? .null),
                    ("last_seq", report.lastSeq.map(JSONValue.int) ?? .null),
                    ("refused", .array(report.refused.map { refused in
                        var entry: [String: JSONValue] = ["line": .int(Int64(refused.inputLine)), "error": .string(refused.error),
                                                          "detail": .string(refused.detail)]
                        if let seq = refused.existingSeq { entry["seq"] = .int(seq) }
                        return .object(entry)
                    })),
                ], pretty: true))
            } else {
                if let first = report.firstSeq, let last = report.lastSeq {
                    print("Appended \(report.appended) event(s), seq \(first)–\(last).")
                } else {
                    print("Appended nothing.")
                }
                for refused in report.refused {
                    FileHandle.standardError.write(Data("refused input line \(refused.inputLine): \(refused.error): \(refused.detail)\n".utf8))
                }
                let repeats = report.refused.filter { $0.code == nil }.count
                if repeats > 0 {
                    FileHandle.standardError.write(Data("\(repeats) line(s) refused because their event_id is already in the outbox or earlier in the input: no event was recorded twice.\n".utf8))
                }
            }
            if !report.refused.isEmpty { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The agency's local view: applications by status, unsynced events, quarantined lines.",
            discussion: """
                Reads only the queue's files; the central database is not needed. Quarantined lines \
                are outbox lines sync refused: cardsync queue quarantine DIR lists them with the reason.

                Examples:
                  cardsync queue status /srv/queues/CS-FR-001
                  cardsync queue status /srv/queues/CS-FR-001 --lang zh
                  cardsync queue status /srv/queues/CS-FR-001 --format json
                """)
        @Argument(help: "Queue directory.") var dir: String
        @Option(help: "Language of the text: en or zh.") var lang: ReportLanguage = .en
        @OptionGroup var output: OutputFormatOptions

        func run() throws {
            let queue = QueueDirectory(path: dir)
            // LocalQueueView reads every outbox and inbox line and reports no progress: on a
            // large queue (seconds for 50 MB) say what is being read rather than sit silent.
            let bar = ProgressBar("queue status")
            let bytes = [queue.outboxFile, queue.inboxFile].compactMap {
                (try? FileManager.default.attributesOfItem(atPath: $0.path)[.size]) as? Int64
            }.reduce(0, +)
            if bytes > 5_000_000 { bar.note(String(format: "reading %.0f MB of outbox and inbox…", Double(bytes) / 1_000_000)) }
            let view = try LocalQueueView.load(queue)
            bar.finish()
            if output.isJSON {
                print(JSONWriter.string(view.json, pretty: true))
                return
            }
            print(Self.text(view, dir: dir, lang: lang))
        }

        /// The text of `queue status` in `lang`; agency names as registered, never translated.
        static func text(_ view: LocalQueueView, dir: String, lang: ReportLanguage) -> String {
            let words = ClerkText(lang: lang)
            let zh = lang == .zh
            // Agency names were typed at a counter: escaped, so they cannot move the cursor.
            let name = TerminalText.escapingControls(view.agency.name)
            var out = [zh ? "经办机构 \(view.agency.code)（\(name)）" : "Agency \(view.agency.code) (\(name))"]
            let rows = ApplicationStatus.allCases.map { [words.status($0), String(view.byStatus[$0] ?? 0)] }
            out.append(TextTable(headers: [words[.status], words[.applications]], rows: rows, rightAligned: [1]).render())
            let incomplete = view.hasIncompleteLine
                ? (zh ? "（另有一行未写完的末行，写完之前不处理）" : " (plus an incomplete final line, left alone until complete)") : ""
            out.append(zh ? "未同步的事件：\(view.unsyncedLines)\(incomplete)" : "Unsynced events: \(view.unsyncedLines)\(incomplete)")
            out.append(zh ? "隔离的行：\(view.quarantinedLines)" : "Quarantined lines: \(view.quarantinedLines)")
            if view.quarantinedLines > 0 {
                // The one thing a clerk must act on: say where to look and what to do.
                let shown = DemoCommand.shellWord(dir)
                out.append(zh
                    ? "  这些行未同步到中心。查看原因：cardsync queue quarantine \(shown) --lang zh\n"
                        + "  更正方法：按原因改正后，以新的 seq 和新的 event_id 追加一行（cardsync queue append \(shown) 文件）；不要修改 outbox.jsonl。"
                    : "  These lines were not synced. See why: cardsync queue quarantine \(shown)\n"
                        + "  To correct one: append a corrected line with a new seq and a new event_id (cardsync queue append \(shown) FILE); never edit outbox.jsonl.")
            }
            out.append(zh ? "收件箱的行：\(view.inboxLines)；待发放的卡：\(view.cardsToHandOver)"
                          : "Inbox lines: \(view.inboxLines); cards to hand over: \(view.cardsToHandOver)")
            let last = view.lastSync?.format(offsetSeconds: 8 * 3600) ?? words[.never]
            out.append(zh ? "上次同步：\(last)" : "Last sync: \(last)")
            return out.joined(separator: "\n")
        }
    }

    struct Quarantine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the outbox lines sync quarantined: line number, reason code and the reason in words.",
            discussion: """
                Identity and phone numbers are shown masked, and the quarantined lines themselves are \
                not printed (they hold the child's data): open outbox.jsonl at the line number to see one. \
                A quarantined line is never synced. To correct it, append a corrected line with a new seq \
                and a new event_id (cardsync queue append DIR FILE); never edit outbox.jsonl.

                Examples:
                  cardsync queue quarantine /srv/queues/CS-FR-001
                  cardsync queue quarantine /srv/queues/CS-FR-001 --lang zh
                  cardsync queue quarantine /srv/queues/CS-FR-001 --format json
                """)
        @Argument(help: "Queue directory.") var dir: String
        @Option(help: "Language of the text: en or zh.") var lang: ReportLanguage = .en
        @OptionGroup var output: OutputFormatOptions
        @Flag(help: "Text: one line per quarantined line however wide (default: fitted to the terminal, 100 columns when not a terminal).")
        var wide = false

        func run() throws {
            let queue = QueueDirectory(path: dir)
            // Reading agency.json first: a path that is not a queue gets the queue's own error.
            let agency = try queue.readAgency()
            let entries = try QuarantineEntry.readAll(from: queue.quarantineFile)
            let words = ClerkText(lang: lang)
            if output.isJSON {
                let rows: [JSONValue] = entries.map { e in
                    ["line": .int(Int64(e.lineNumber)), "error": .string(e.error),
                     "reason": .string(words.quarantineReason(e.error)),
                     "detail": .string(PersonalDataMask.freeText(e.detail))]
                }
                print(JSONWriter.object([("agency_code", .string(agency.code)), ("quarantined", .array(rows))], pretty: true))
                return
            }
            let zh = lang == .zh
            guard !entries.isEmpty else {
                print(zh ? "经办机构 \(agency.code) 没有被隔离的行。" : "No quarantined lines in the queue of agency \(agency.code).")
                return
            }
            let table = TextTable(
                headers: [words[.line], words[.code], words[.reason]],
                rows: entries.map { e in
                    // The detail is cardsync's own English text; a file edited by hand could hold
                    // anything, so it is masked and escaped like any text from a queue.
                    let detail = TerminalText.escapingControls(PersonalDataMask.freeText(e.detail))
                    return [String(e.lineNumber), e.error, words.quarantineReason(e.error) + (detail.isEmpty ? "" : (zh ? "。详情：" : ". Detail: ") + detail)]
                },
                rightAligned: [0],
                // Fitted to the terminal like the conflicts list: the reason wraps, or goes under
                // its row when too little room is left; --wide keeps one line per entry.
                maxWidth: wide ? nil : OutputWidth.current(), freeText: (2, .wrap))
            print(table.render())
            let shown = DemoCommand.shellWord(dir)
            let footer = zh
                ? "共 \(entries.count) 行被隔离，未同步到中心。更正方法：按原因改正后，以新的 seq 和新的 event_id 追加一行"
                    + "（cardsync queue append \(shown) 文件）；不要修改 outbox.jsonl。行号指 outbox.jsonl 中的行。"
                : "\(entries.count) line(s) quarantined, not synced. To correct one: append a corrected line with a new seq and a new "
                    + "event_id (cardsync queue append \(shown) FILE); never edit outbox.jsonl. Line numbers are lines of outbox.jsonl."
            print("")
            print(wide ? footer : TerminalLayout.wrapped(footer, width: OutputWidth.current()).joined(separator: "\n"))
        }
    }
}
