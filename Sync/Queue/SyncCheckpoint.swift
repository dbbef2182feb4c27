import CardCore
import Foundation

/// The sync checkpoint kept in `state.json`.
///
/// Sizes are in bytes. After a crash, sync truncates the sync-owned files (inbox.jsonl,
/// quarantine.jsonl) back to the sizes recorded here and reads the outbox again from
/// `outboxOffset`, so that nothing is lost and nothing is written twice.
///
/// ```json
/// {"version": 1, "outbox_offset": 18231, "outbox_line": 30, "last_seq": 30, "pushed_seq": 30,
///  "inbox_size": 4410, "inbox_ledger_id": 88213, "pulled_delivery": 512, "quarantine_size": 0,
///  "updated_at": "2026-10-03T09:20:00Z", "centre_id": "5f0c…"}
/// ```
/// Unknown keys are ignored when loading, so newer fields can be added without a new version.
public struct SyncCheckpoint: Sendable, Equatable, Codable {
    public static let currentVersion = 1

    public var version: Int
    /// Byte offset in outbox.jsonl just after the last line processed (valid or quarantined).
    public var outboxOffset: Int64
    /// Line number of the last outbox line processed (0 = none).
    public var outboxLine: Int
    /// The greatest `seq` seen so far in the outbox, for `seq_not_increasing`.
    public var lastSeq: Int64?
    /// The greatest `seq` whose event the central database has accepted.
    public var pushedSeq: Int64?
    /// Size of inbox.jsonl after the last pull.
    public var inboxSize: Int64
    /// The greatest ledger id written to inbox.jsonl.
    public var inboxLedgerID: Int64?
    /// The pull cursor: the last central delivery id written to inbox.jsonl (pull resumes after it).
    public var pulledDelivery: Int64?
    /// Size of quarantine.jsonl after the last sync.
    public var quarantineSize: Int64
    /// When the checkpoint was written.
    public var updatedAt: Timestamp?
    /// The identity of the central database this queue syncs with (`cardsync.centre_identity`):
    /// a sync against another centre is refused unless told, while a centre restored from its own
    /// backup keeps its id.
    public var centreID: UUID?
    /// Bytes at the start of inbox.jsonl that may hold events the centre no longer has: it was
    /// restored from an older backup, or the queue moved to another centre. The centre may
    /// deliver those events again under new delivery ids (the bureau re-imports its decisions,
    /// the merge re-opens a conflict under the same notification id), so while this is set every
    /// pull skips events the inbox already holds. Cleared once the centre holds them all again;
    /// nil in the common case, where a pull reads no inbox at all.
    public var unconfirmedInboxSize: Int64?

    public init(version: Int = SyncCheckpoint.currentVersion, outboxOffset: Int64 = 0, outboxLine: Int = 0,
                lastSeq: Int64? = nil, pushedSeq: Int64? = nil, inboxSize: Int64 = 0, inboxLedgerID: Int64? = nil,
                pulledDelivery: Int64? = nil, quarantineSize: Int64 = 0, updatedAt: Timestamp? = nil,
                centreID: UUID? = nil, unconfirmedInboxSize: Int64? = nil)
    {
        self.version = version
        self.outboxOffset = outboxOffset
        self.outboxLine = outboxLine
        self.lastSeq = lastSeq
        self.pushedSeq = pushedSeq
        self.inboxSize = inboxSize
        self.inboxLedgerID = inboxLedgerID
        self.pulledDelivery = pulledDelivery
        self.quarantineSize = quarantineSize
        self.updatedAt = updatedAt
        self.centreID = centreID
        self.unconfirmedInboxSize = unconfirmedInboxSize
    }

    /// A fresh start: nothing read, nothing pulled.
    public static let initial = SyncCheckpoint()

    enum CodingKeys: String, CodingKey {
        case version
        case outboxOffset = "outbox_offset"
        case outboxLine = "outbox_line"
        case lastSeq = "last_seq"
        case pushedSeq = "pushed_seq"
        case inboxSize = "inbox_size"
        case inboxLedgerID = "inbox_ledger_id"
        case pulledDelivery = "pulled_delivery"
        case quarantineSize = "quarantine_size"
        case updatedAt = "updated_at"
        case centreID = "centre_id"
        case unconfirmedInboxSize = "unconfirmed_inbox_size"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        outboxOffset = try c.decodeIfPresent(Int64.self, forKey: .outboxOffset) ?? 0
        outboxLine = try c.decodeIfPresent(Int.self, forKey: .outboxLine) ?? 0
        lastSeq = try c.decodeIfPresent(Int64.self, forKey: .lastSeq)
        pushedSeq = try c.decodeIfPresent(Int64.self, forKey: .pushedSeq)
        inboxSize = try c.decodeIfPresent(Int64.self, forKey: .inboxSize) ?? 0
        inboxLedgerID = try c.decodeIfPresent(Int64.self, forKey: .inboxLedgerID)
        pulledDelivery = try c.decodeIfPresent(Int64.self, forKey: .pulledDelivery)
        quarantineSize = try c.decodeIfPresent(Int64.self, forKey: .quarantineSize) ?? 0
        if let text = try c.decodeIfPresent(String.self, forKey: .updatedAt) {
            guard let t = Timestamp(rfc3339: text) else {
                throw DecodingError.dataCorruptedError(forKey: .updatedAt, in: c,
                                                       debugDescription: "not an RFC 3339 timestamp")
            }
            updatedAt = t
        } else {
            updatedAt = nil
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .centreID) {
            guard let id = UUID(uuidString: text) else {
                throw DecodingError.dataCorruptedError(forKey: .centreID, in: c, debugDescription: "not a UUID")
            }
            centreID = id
        } else {
            centreID = nil
        }
        unconfirmedInboxSize = try c.decodeIfPresent(Int64.self, forKey: .unconfirmedInboxSize)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(outboxOffset, forKey: .outboxOffset)
        try c.encode(outboxLine, forKey: .outboxLine)
        try c.encode(lastSeq, forKey: .lastSeq)
        try c.encode(pushedSeq, forKey: .pushedSeq)
        try c.encode(inboxSize, forKey: .inboxSize)
        try c.encode(inboxLedgerID, forKey: .inboxLedgerID)
        try c.encode(pulledDelivery, forKey: .pulledDelivery)
        try c.encode(quarantineSize, forKey: .quarantineSize)
        try c.encode(updatedAt?.rfc3339, forKey: .updatedAt)
        try c.encode(centreID.map { $0.uuidString.lowercased() }, forKey: .centreID)
        try c.encodeIfPresent(unconfirmedInboxSize, forKey: .unconfirmedInboxSize)
    }

    /// The checkpoint as the bytes of state.json: an object with keys in a fixed order, one line.
    public func fileBytes() -> [UInt8] {
        func opt(_ v: Int64?) -> OrderedJSON { v.map { .value(.int($0)) } ?? .value(.null) }
        var fields: [(String, OrderedJSON)] = [
            ("version", .value(.int(Int64(version)))),
            ("outbox_offset", .value(.int(outboxOffset))),
            ("outbox_line", .value(.int(Int64(outboxLine)))),
            ("last_seq", opt(lastSeq)),
            ("pushed_seq", opt(pushedSeq)),
            ("inbox_size", .value(.int(inboxSize))),
            ("inbox_ledger_id", opt(inboxLedgerID)),
            ("pulled_delivery", opt(pulledDelivery)),
            ("quarantine_size", .value(.int(quarantineSize))),
            ("updated_at", updatedAt.map { .value(.string($0.rfc3339)) } ?? .value(.null)),
            ("centre_id", centreID.map { .value(.string($0.uuidString.lowercased())) } ?? .value(.null)),
        ]
        // Only after a restore: every other queue's state.json stays as it was.
        if let unconfirmedInboxSize { fields.append(("unconfirmed_inbox_size", .value(.int(unconfirmedInboxSize)))) }
        return JSONWriter.bytes(.object(fields), pretty: true) + [0x0A]
    }

    /// Loads state.json; nil when the file does not exist (a fresh start).
    public static func load(from url: URL) throws(QueueError) -> SyncCheckpoint? {
        let path = url.path
        guard QueueFile.exists(path) else { return nil }
        let file = try QueueFile.open(path, .readOnly, what: "sync state")
        let size = try file.size()
        let bytes = try file.readBytes(at: 0, count: Int(min(size, 1 << 20)))
        file.close()
        let checkpoint: SyncCheckpoint
        do {
            checkpoint = try JSONDecoder().decode(SyncCheckpoint.self, from: Data(bytes))
        } catch {
            throw QueueError(.badState,
                             "\(path) cannot be read (\(error)); move it aside to sync this queue from the start again",
                             path: path)
        }
        guard checkpoint.version == currentVersion else {
            throw QueueError(.badState,
                             "\(path) has version \(checkpoint.version); this cardsync reads version \(currentVersion)",
                             path: path)
        }
        return checkpoint
    }

    /// Replaces state.json atomically: temporary file in the same directory, fsync, rename,
    /// fsync of the directory. A crash leaves either the old or the new checkpoint.
    public func save(to url: URL) throws(QueueError) {
        try QueueFile.writeAtomically(fileBytes(), to: url.path)
    }
}
