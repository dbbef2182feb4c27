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
        static let configuration = CommandConfiguration(abstract: "Create an agency queue directory (safe to run twice).")
        @Argument(help: "Queue directory.") var dir: String
        @Option(help: "Agency code, e.g. CS-FR-001.") var agency: String
        @Option(help: "Agency name (default: the code).") var name: String?
        @Option(help: "District.") var district: String?
        @Option(help: "counter or online.") var channel: AgencyChannel = .counter

        func validate() throws {
            guard Agency.isValidCode(agency) else {
                throw ValidationError("agency code '\(agency)' must match ^[A-Z0-9][A-Z0-9-]{1,31}$")
            }
        }

        func run() throws {
            let agencyValue = Agency(code: agency, name: name ?? agency, district: district, channel: channel)
            let queue = try QueueDirectory.initialize(at: URL(fileURLWithPath: dir), agency: agencyValue)
            print("Queue for agency \(agency) ready in \(queue.path).")
        }
    }

    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate event lines and append the valid ones to the outbox, assigning seq.",
            discussion: "Reads FILE, or standard input when FILE is - or absent. Invalid lines are refused with their error code (exit 1); the valid ones are appended.")
        @Argument(help: "Queue directory.") var dir: String
        @Argument(help: "File of event lines, or - for standard input.") var file: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let input: QueueAppender.Input = (file == nil || file == "-") ? .standardInput : .file(URL(fileURLWithPath: file!))
            let report = try QueueAppender(directory: QueueDirectory(path: dir)).append(input)
            if json {
                print(JSONWriter.object([
                    ("appended", .int(Int64(report.appended))),
                    ("first_seq", report.firstSeq.map(JSONValue.int) ?? .null),
                    ("last_seq", report.lastSeq.map(JSONValue.int) ?? .null),
                    ("refused", .array(report.refused.map {
                        .object(["line": .int(Int64($0.inputLine)), "error": .string($0.code.rawValue), "detail": .string($0.detail)])
                    })),
                ], pretty: true))
            } else {
                if report.appended > 0 {
                    print("Appended \(report.appended) event(s), seq \(report.firstSeq!)–\(report.lastSeq!).")
                } else {
                    print("Appended nothing.")
                }
                for refused in report.refused {
                    FileHandle.standardError.write(Data("refused input line \(refused.inputLine): \(refused.code.rawValue): \(refused.detail)\n".utf8))
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
