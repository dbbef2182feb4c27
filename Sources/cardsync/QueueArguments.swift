import ArgumentParser
import CardSync
import Foundation

/// The `DIR...` arguments of `sync` and `reconcile`, sorted into queues, plain files to skip and
/// paths that cannot be synced.
///
/// A shell pattern such as `cardsync sync /srv/queues/*` also matches the files kept beside the
/// queues (`cardsync generate` used to write agencies.json and bureau-decisions.jsonl there):
/// a plain file can never be a queue, so it is skipped with a note instead of failing the whole
/// run. A directory is different: it may be a queue whose agency.json is missing or not created
/// yet, so it stays an error, with the advice that fits it.
struct QueueArguments {
    /// The paths to sync, in the order given.
    var queues: [String] = []
    /// Plain files left out, each with the note printed on stderr.
    var skipped: [(path: String, note: String)] = []
    /// Paths that are neither, with the message and what to do.
    var problems: [(path: String, failure: CommandFailure)] = []

    init(_ paths: [String], command: String) {
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                problems.append((path, CommandFailure("\(path) does not exist",
                                                      hint: "check the path; to create an agency queue there: cardsync queue init \(path) --agency CODE")))
                continue
            }
            guard isDirectory.boolValue else {
                skipped.append((path, "note: skipping \(path): a file, not an agency queue directory"))
                continue
            }
            let queue = QueueDirectory(path: path)
            if fm.fileExists(atPath: queue.agencyFile.path) {
                queues.append(path)
                continue
            }
            // A folder of queues (generate's DIR/queues, /srv/queues): name the queues inside it.
            let inside = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted().filter {
                fm.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent($0).appendingPathComponent("agency.json").path)
            }
            if !inside.isEmpty {
                let base = path.hasSuffix("/") ? String(path.dropLast()) : path
                problems.append((path, CommandFailure(
                    "\(path) is not an agency queue but holds \(inside.count) of them (\(inside.prefix(3).joined(separator: ", "))\(inside.count > 3 ? ", …" : ""))",
                    hint: "name the queues themselves: cardsync \(command) \(base)/*")))
            } else {
                problems.append((path, CommandFailure(
                    "\(path) is not an agency queue: it has no agency.json",
                    hint: "create the queue with cardsync queue init \(path) --agency CODE, or leave the directory out")))
            }
        }
    }

    /// Prints the notes of the skipped files on stderr; throws a usage error (exit 64) when
    /// nothing that was named can be synced, since then the command line itself is wrong.
    func reportSkipped(_ command: any ParsableCommand.Type) throws {
        for skipped in skipped { printError(skipped.note) }
        if queues.isEmpty && problems.isEmpty {
            let files = skipped.map(\.path).joined(separator: ", ")
            throw UsageFailure(command, "none of the paths given is an agency queue directory (\(files) \(skipped.count == 1 ? "is a file" : "are files"))")
        }
    }
}
