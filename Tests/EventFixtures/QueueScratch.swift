import CardCore
import CardSync
import Foundation

/// A fresh temporary directory per test, removed afterwards.
public final class QueueScratch {
    public let root: URL

    public init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("cardsync-queue-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    public var agency: Agency { Agency(code: "CS-FR-001", name: "芙蓉区社保卡服务网点", district: "芙蓉区", channel: .counter) }

    public func queue() throws -> QueueDirectory {
        try QueueDirectory.initialize(at: root.appendingPathComponent("queue"), agency: agency)
    }

    public func write(_ url: URL, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: url)
    }

    public func append(_ url: URL, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    public func read(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }
}

/// A valid outbox line with the given seq and a fresh event id.
public func outboxLine(seq: Int64?, type: String = "documents_verified") -> [UInt8] {
    let value = ValidationFixture.event(type: type, seq: seq)
        .setting("event_id", to: .string(UUID().uuidString.lowercased()))
    return JSONWriter.bytes(value)
}
