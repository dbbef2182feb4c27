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

    /// What `queue init` did.
    public struct InitResult: Sendable, Equatable {
        public var queue: QueueDirectory
        /// The identity in agency.json afterwards.
        public var agency: Agency
        /// False when agency.json was already there (and nothing was changed).
        public var created: Bool
    }

    /// `cardsync queue init DIR --agency CODE [--name N] [--district D] [--channel C]`: creates
    /// the directory if needed, writes agency.json (atomically) and creates an empty
    /// outbox.jsonl if there is none. Omitted fields get their defaults on creation: the name is
    /// the code, no district, channel `counter`.
    ///
    /// agency.json is "written once by `cardsync queue init`" (queue-format.md). Run again with
    /// the same identity, or with fields left out, it changes nothing (`created` is false); a
    /// field left out is not a request to reset it, so a district set once is not lost. A code,
    /// name, district or channel given explicitly that differs from agency.json is refused with
    /// `.agencyMismatch`, naming the field and what the file holds: whether a rename or a typo
    /// is meant, only a person can tell, and editing the file is the deliberate way. A file
    /// that cannot be read is refused with `.badAgencyFile`, so that nothing unknown is
    /// overwritten.
    @discardableResult
    public static func initialize(at url: URL, code: String, name: String? = nil, district: String? = nil,
                                  channel: AgencyChannel? = nil) throws(QueueError) -> InitResult
    {
        try create(at: url, code: code, name: name, district: district.map { .some($0) }, channel: channel)
    }

    /// `initialize(at:code:name:district:channel:)` with every field of `agency` given, a
    /// missing district included: an existing agency.json must match it entirely.
    @discardableResult
    public static func initialize(at url: URL, agency: Agency) throws(QueueError) -> QueueDirectory {
        try create(at: url, code: agency.code, name: agency.name, district: .some(agency.district),
                   channel: agency.channel).queue
    }

    /// `district`: nil when not given, `.some(nil)` when given as "no district".
    private static func create(at url: URL, code: String, name: String?, district: String??,
                               channel: AgencyChannel?) throws(QueueError) -> InitResult
    {
        let queue = QueueDirectory(url)
        guard AgencyCode.isValid(code) else {
            throw QueueError(.invalidArgument,
                             "invalid agency code \"\(code)\": expected 2 to 32 characters A-Z, 0-9 and '-', starting with a letter or digit",
                             path: queue.path)
        }
        if let name, name.isEmpty {
            throw QueueError(.invalidArgument, "the agency name must not be empty", path: queue.path)
        }
        for (field, value) in [("name", name), ("district", district ?? nil)] where value?.utf8.contains(0) == true {
            throw QueueError(.invalidArgument, "the agency \(field) must not hold a NUL character", path: queue.path)
        }
        do {
            try FileManager.default.createDirectory(at: queue.url, withIntermediateDirectories: true)
        } catch {
            throw QueueError(.io, "cannot create the queue directory \(queue.path): \(error.localizedDescription)",
                             path: queue.path)
        }
        let result: InitResult
        if QueueFile.exists(queue.agencyFile.path) {
            let existing = try queue.readAgency()
            guard existing.code == code else {
                throw QueueError(.agencyMismatch,
                                 "\(queue.path) already belongs to agency \(existing.code); refusing to make it a queue of \(code) (use another directory)",
                                 path: queue.agencyFile.path)
            }
            var differences: [String] = []
            if let name, name != existing.name {
                differences.append("name \(quoted(name)) (agency.json holds \(quoted(existing.name)))")
            }
            if let district, district != existing.district {
                differences.append("district \(district.map(quoted) ?? "none") (agency.json holds \(existing.district.map(quoted) ?? "none"))")
            }
            if let channel, channel != existing.channel {
                differences.append("channel \(channel.rawValue) (agency.json holds \(existing.channel.rawValue))")
            }
            guard differences.isEmpty else {
                throw QueueError(.agencyMismatch,
                                 "\(queue.path) is already the queue of agency \(code); refusing to change its \(differences.joined(separator: ", ")). agency.json is written once: leave the option out to keep what it holds, or edit the file if the agency really changed",
                                 path: queue.agencyFile.path)
            }
            result = InitResult(queue: queue, agency: existing, created: false)
        } else {
            let agency = Agency(code: code, name: name ?? code, district: district ?? nil, channel: channel ?? .counter)
            try QueueFile.writeAtomically(agencyFileBytes(agency), to: queue.agencyFile.path)
            result = InitResult(queue: queue, agency: agency, created: true)
        }
        if !QueueFile.exists(queue.outboxFile.path) {
            let outbox = try QueueFile.open(queue.outboxFile.path, .append, what: "outbox")
            try outbox.sync()
            outbox.close()
            try QueueFile.syncDirectory(queue.path)
        }
        return result
    }

    private static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        JSONWriter.writeString(text, into: &out)
        return String(decoding: out, as: UTF8.self)
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
        func bad(_ why: String) -> QueueError {
            QueueError(.badAgencyFile, "\(file) is not a valid agency file: \(why)", path: file)
        }
        let handle = try QueueFile.open(file, .readOnly, what: "agency file")
        let size = try handle.size()
        // A real agency.json is a few hundred bytes: a larger one is not read (or half read).
        guard size <= 1 << 20 else {
            handle.close()
            throw bad("it is \(size) bytes long; an agency file is far below the limit of 1 MiB")
        }
        let bytes = try handle.readBytes(at: 0, count: Int(size))
        handle.close()
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
        guard AgencyCode.isValid(code) else {
            throw bad("agency.code in agency.json: " + AgencyCode.problem(code))
        }
        guard let name = a["name"]?.stringValue, !name.isEmpty else { throw bad("agency.name is missing") }
        var district: String?
        switch a["district"] {
        case nil, .null?: district = nil
        case .string(let d)?: district = d
        default: throw bad("agency.district is not a string")
        }
        // The first sync registers the agency centrally, and PostgreSQL text cannot hold NUL:
        // such a name would fail every sync of the queue, later and less clearly.
        if name.utf8.contains(0) { throw bad("agency.name holds a NUL character (\\u0000)") }
        if district?.utf8.contains(0) == true { throw bad("agency.district holds a NUL character (\\u0000)") }
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
