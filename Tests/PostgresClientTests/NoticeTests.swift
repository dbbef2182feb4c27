import Foundation
import Logging
import PostgresClient
import Testing
import TestSupport

/// Collects log entries in memory.
final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(Logger.Level, String)] = []

    func append(_ level: Logger.Level, _ message: String) {
        lock.withLock { entries.append((level, message)) }
    }

    var all: [(Logger.Level, String)] { lock.withLock { entries } }
}

struct CapturingLogHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append(event.level, event.message.description)
    }
}

@Suite("Server notices")
struct NoticeTests {
    @Test("server NOTICE and WARNING messages go to the logger at debug level")
    func noticesAreLogged() throws {
        let logs = CapturedLogs()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(sink: logs) }
        let connection = try Connection(conninfo: try TestDatabase.freshDatabase(), logger: logger)
        try connection.executeScript("DO $$ BEGIN RAISE NOTICE 'hello % from 王小明', 42; RAISE WARNING 'careful'; END $$")
        let messages = logs.all.filter { $0.0 == .debug }.map(\.1)
        #expect(messages.contains { $0.contains("hello 42 from 王小明") })
        #expect(messages.contains { $0.contains("careful") })
    }
}
