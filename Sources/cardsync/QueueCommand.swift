import ArgumentParser
import CardCore
import CardSync
import Foundation

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Create an agency queue, append events to it, and show its local view.",
        subcommands: [Init.self, Append.self, Status.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an agency queue directory (safe to run twice).",
            discussion: "agency.json is written once. Run again on an existing queue, it changes nothing; an option that contradicts agency.json (another code, name, district or channel) is refused with exit 1, and an option left out keeps what the file holds.")
        @Argument(help: "Queue directory.") var dir: String
        @Option(help: "Agency code, e.g. CS-FR-001.") var agency: String
        @Option(help: "Agency name (default: the code).") var name: String?
        @Option(help: "District.") var district: String?
        // Optional, so that a re-run can tell "not given" from "given as counter".
        @Option(help: "counter or online (default: counter).") var channel: AgencyChannel?

        func validate() throws {
            guard Agency.isValidCode(agency) else {
                throw ValidationError("agency code '\(agency)' must match ^[A-Z0-9][A-Z0-9-]{1,31}$")
            }
        }

        func run() throws {
            let result = try QueueDirectory.initialize(at: URL(fileURLWithPath: dir), code: agency, name: name,
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
            discussion: "Reads FILE, or standard input when FILE is - or absent. Invalid lines are refused with their error code (exit 1); the valid ones are appended. A line whose event_id the outbox already holds (or that repeats an earlier line of the input) is refused as duplicate_event_id, naming the seq that holds it: appending the same file again appends nothing twice.")
        @Argument(help: "Queue directory.") var dir: String
        @Argument(help: "File of event lines, or - for standard input.") var file: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let input: QueueAppender.Input
            if let file, file != "-" { input = .file(URL(fileURLWithPath: file)) } else { input = .standardInput }
            let report = try QueueAppender(directory: QueueDirectory(path: dir)).append(input)
            if json {
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
            abstract: "The agency's local view: applications by status, unsynced events, quarantined lines.")
        @Argument(help: "Queue directory.") var dir: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let view = try LocalQueueView.load(QueueDirectory(path: dir))
            if json {
                print(JSONWriter.string(view.json, pretty: true))
                return
            }
            print("Agency \(view.agency.code) (\(view.agency.name))")
            let rows = ApplicationStatus.allCases.map { [$0.rawValue, String(view.byStatus[$0] ?? 0)] }
            print(TextTable(headers: ["status", "applications"], rows: rows, rightAligned: [1]).render())
            print("Unsynced events: \(view.unsyncedLines)\(view.hasIncompleteLine ? " (plus an incomplete final line, left alone until complete)" : "")")
            print("Quarantined lines: \(view.quarantinedLines)")
            print("Inbox lines: \(view.inboxLines); cards to hand over: \(view.cardsToHandOver)")
            print("Last sync: \(view.lastSync?.format(offsetSeconds: 8 * 3600) ?? "never")")
        }
    }
}
