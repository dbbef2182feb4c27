import CardCore
import Foundation

/// An agency queue directory (`cardsync.queue.v1`) and the paths of its files.
///
/// ```
/// QUEUE_DIR/
///   agency.json  outbox.jsonl  inbox.jsonl  quarantine.jsonl  state.json  .cardsync.lock
/// ```
public struct QueueDirectory: Sendable, Hashable {
    public static let format = "cardsync.queue.v1"

    public let url: URL

    public init(_ url: URL) {
        // Always a directory URL, so that equality does not depend on whether it existed.
        self.url = URL(fileURLWithPath: url.standardizedFileURL.path, isDirectory: true)
    }

    public init(path: String) {
        self.init(URL(fileURLWithPath: path, isDirectory: true))
    }

    public var path: String { url.path }
    public var agencyFile: URL { url.appendingPathComponent("agency.json") }
    public var outboxFile: URL { url.appendingPathComponent("outbox.jsonl") }
    public var inboxFile: URL { url.appendingPathComponent("inbox.jsonl") }
    public var quarantineFile: URL { url.appendingPathComponent("quarantine.jsonl") }
    public var stateFile: URL { url.appendingPathComponent("state.json") }
    public var lockFile: URL { url.appendingPathComponent(".cardsync.lock") }

    // MARK: queue init

    /// `cardsync queue init DIR --agency CODE`: creates the directory if needed, writes
    /// agency.json (atomically) and creates an empty outbox.jsonl if there is none.
    ///
    /// Running it again for the same agency code is safe: existing files are kept (agency.json
    /// is rewritten only when the name, district or channel changed). It refuses, with
    /// `.agencyMismatch`, a directory that belongs to another agency, and with `.badAgencyFile`
    /// one whose agency.json it cannot read, so that nothing unknown is overwritten.
    @discardableResult
    public static func initialize(at url: URL, agency: Agency) throws(QueueError) -> QueueDirectory {
        let queue = QueueDirectory(url)
        guard Agency.isValidCode(agency.code) else {
            throw QueueError(.invalidArgument,
                             "invalid agency code \"\(agency.code)\": expected 2 to 32 characters A-Z, 0-9 and '-', starting with a letter or digit",
                             path: queue.path)
        }
        guard !agency.name.isEmpty else {
            throw QueueError(.invalidArgument, "the agency name must not be empty", path: queue.path)
        }
        do {
            try FileManager.default.createDirectory(at: queue.url, withIntermediateDirectories: true)
        } catch {
            throw QueueError(.io, "cannot create the queue directory \(queue.path): \(error.localizedDescription)",
                             path: queue.path)
        }
        let wanted = agencyFileBytes(agency)
        if QueueFile.exists(queue.agencyFile.path) {
            let existing = try queue.readAgency()
            guard existing.code == agency.code else {
                throw QueueError(.agencyMismatch,
                                 "\(queue.path) already belongs to agency \(existing.code); refusing to make it a queue of \(agency.code) (use another directory)",
                                 path: queue.agencyFile.path)
            }
            if existing != agency {
                try QueueFile.writeAtomically(wanted, to: queue.agencyFile.path)
            }
        } else {
            try QueueFile.writeAtomically(wanted, to: queue.agencyFile.path)
        }
        if !QueueFile.exists(queue.outboxFile.path) {
            let outbox = try QueueFile.open(queue.outboxFile.path, .append, what: "outbox")
            try outbox.sync()
            outbox.close()
            try QueueFile.syncDirectory(queue.path)
        }
        return queue
    }

    /// agency.json in the spec's shape:
    /// `{"format": "cardsync.queue.v1",\n "agency": {"code": .., "name": .., "district": .., "channel": ..}}`
    /// A missing district is written as `null`.
    public static func agencyFileBytes(_ agency: Agency) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: "{\"format\": ".utf8)
        JSONWriter.writeString(format, into: &out)
        out.append(contentsOf: ",\n \"agency\": {\"code\": ".utf8)
        JSONWriter.writeString(agency.code, into: &out)
        out.append(contentsOf: ", \"name\": ".utf8)
        JSONWriter.writeString(agency.name, into: &out)
        out.append(contentsOf: ", \"district\": ".utf8)
        if let district = agency.district {
            JSONWriter.writeString(district, into: &out)
        } else {
            out.append(contentsOf: "null".utf8)
        }
        out.append(contentsOf: ", \"channel\": ".utf8)
        JSONWriter.writeString(agency.channel.rawValue, into: &out)
        out.append(contentsOf: "}}\n".utf8)
        return out
    }

    // MARK: agency.json

    /// Reads and checks agency.json: `format` must be `cardsync.queue.v1`, `agency.code` a valid
    /// code, `agency.name` a non-empty string, `agency.channel` `counter` or `online` (default
    /// `counter` when absent), `agency.district` a string or absent/null.
    public func readAgency() throws(QueueError) -> Agency {
        let file = agencyFile.path
        guard QueueFile.exists(file) else {
            throw QueueError(.notAQueue,
                             "\(path) is not a cardsync queue: agency.json is missing (create it with `cardsync queue init \(path) --agency CODE`)",
                             path: file)
        }
        let handle = try QueueFile.open(file, .readOnly, what: "agency file")
        let size = try handle.size()
        let bytes = try handle.readBytes(at: 0, count: Int(min(size, 1 << 20)))
        handle.close()
        func bad(_ why: String) -> QueueError {
            QueueError(.badAgencyFile, "\(file) is not a valid agency file: \(why)", path: file)
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw bad("\(error)")
        }
        guard case .object(let top) = value else { throw bad("not a JSON object") }
        guard let format = top["format"]?.stringValue else { throw bad("the \"format\" field is missing") }
        guard format == Self.format else {
            throw bad("format is \"\(format)\", this cardsync reads \"\(Self.format)\"")
        }
        guard case .object(let a)? = top["agency"] else { throw bad("the \"agency\" object is missing") }
        guard let code = a["code"]?.stringValue else { throw bad("agency.code is missing") }
        guard Agency.isValidCode(code) else {
            throw bad("agency.code \"\(code)\" is not a valid agency code (^[A-Z0-9][A-Z0-9-]{1,31}$)")
        }
        guard let name = a["name"]?.stringValue, !name.isEmpty else { throw bad("agency.name is missing") }
        var district: String?
        switch a["district"] {
        case nil, .null?: district = nil
        case .string(let d)?: district = d
        default: throw bad("agency.district is not a string")
        }
        var channel = AgencyChannel.counter
        switch a["channel"] {
        case nil, .null?: break
        case .string(let c)?:
            guard let ch = AgencyChannel(rawValue: c) else {
                throw bad("agency.channel \"\(c)\" is neither counter nor online")
            }
            channel = ch
        default: throw bad("agency.channel is not a string")
        }
        return Agency(code: code, name: name, district: district, channel: channel)
    }

    // MARK: state.json

    /// The last checkpoint, or nil when the queue has never been synced.
    public func loadCheckpoint() throws(QueueError) -> SyncCheckpoint? {
        try SyncCheckpoint.load(from: stateFile)
    }

    /// Replaces state.json atomically.
    public func saveCheckpoint(_ checkpoint: SyncCheckpoint) throws(QueueError) {
        try checkpoint.save(to: stateFile)
    }
}
