import Foundation
import PostgresClient
import Testing
import TestSupport

/// Resident memory of this process in bytes, from /proc/self/statm (second field, in pages).
func residentMemory() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// The big streaming tests run one at a time so their memory measurements do not overlap.
@Suite("COPY streams any number of rows in bounded memory", .serialized)
struct CopyStreamingTests {
    static let rows = 150_000
    static let payload = String(repeating: "王小明 芙蓉区 ", count: 35)  // 700 bytes of UTF-8
    static let memoryBound = 50 * 1024 * 1024

    @Test("text COPY of 150,000 generated rows (~100 MB) keeps memory growth under 50 MiB")
    func textCopyIsStreamed() throws {
        let connection = try TestDatabase.connect()
        try connection.executeScript("CREATE UNLOGGED TABLE items (id bigint, note text, at timestamptz)")
        let before = residentMemory()
        var peak = before
        var bytes = 0
        let copied = try connection.copyIn("COPY items (id, note, at) FROM STDIN") { writer in
            for id in 0..<Self.rows {
                let line = "\(id)\t\(Self.payload)\t2024-05-01 08:00:00+08\n"
                bytes += line.utf8.count
                try writer.write(line)
                if id % 10_000 == 0 { peak = max(peak, residentMemory()) }
            }
        }
        peak = max(peak, residentMemory())
        #expect(copied == Self.rows)
        #expect(bytes > 100_000_000)
        #expect(peak - before < Self.memoryBound, "memory grew by \(peak - before) bytes")
        let count = try connection.query("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM items")[0]
        #expect(try count.decode(Int.self, column: "n") == Self.rows)
        #expect(try count.decode(Int.self, column: "ids") == Self.rows)
    }

    @Test("binary COPY of 150,000 generated rows (~100 MB) keeps memory growth under 50 MiB")
    func binaryCopyIsStreamed() throws {
        let connection = try TestDatabase.connect()
        try connection.executeScript("""
            CREATE UNLOGGED TABLE items (id bigint, code integer, flag boolean, note text, ref uuid, at timestamptz, doc jsonb)
            """)
        let before = residentMemory()
        var peak = before
        var bytesSent = 0
        let copied = try connection.copyIn("COPY items FROM STDIN (FORMAT binary)") { writer in
            var encoder = BinaryCopyEncoder()
            for id in 0..<Self.rows {
                encoder.beginRow(fieldCount: 7)
                encoder.writeInt64(Int64(id))
                encoder.writeInt32(Int32(id % 1000))
                encoder.writeBool(id % 2 == 0)
                encoder.writeText(Self.payload)
                encoder.writeUUID(UUID())
                encoder.writeTimestamp(microsecondsSince1970: 1_714_521_600_000_000 + Int64(id))
                if id % 3 == 0 { encoder.writeNull() } else { encoder.writeJSONB(#"{"n": \#(id)}"#) }
                try encoder.flushIfNeeded(into: writer)
                if id % 10_000 == 0 { peak = max(peak, residentMemory()) }
            }
            encoder.writeTrailer()
            try encoder.flush(into: writer)
            try writer.flush()
            bytesSent = writer.bytesSent
        }
        peak = max(peak, residentMemory())
        #expect(copied == Self.rows)
        #expect(bytesSent > 100_000_000)
        #expect(peak - before < Self.memoryBound, "memory grew by \(peak - before) bytes")
        let summary = try connection.query("""
            SELECT count(*) AS n, count(doc) AS docs, max(at) AS last, sum(code) AS codes,
                   count(*) FILTER (WHERE flag) AS flags
            FROM items
            """)[0]
        #expect(try summary.decode(Int.self, column: "n") == Self.rows)
        #expect(try summary.decode(Int.self, column: "docs") == Self.rows - Self.rows / 3)
        #expect(try summary.decode(Int.self, column: "flags") == Self.rows / 2)
        #expect(try summary.decode(PostgresTimestamp.self, column: "last").microsecondsSince1970
                == 1_714_521_600_000_000 + Int64(Self.rows - 1))
    }
}

@Suite("COPY failures leave the table untouched")
struct CopyFailureTests {
    let connection: Connection

    init() throws {
        connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL)")
    }

    private func count() throws -> Int {
        try connection.query("SELECT count(*) FROM people")[0].decode(Int.self, at: 0)
    }

    @Test("a COPY with a bad row surfaces the server's message and SQLSTATE, and the table stays empty")
    func badRow() throws {
        let error = #expect(throws: PostgresError.self) {
            try connection.copyIn("COPY people FROM STDIN") { writer in
                try writer.writeTextRow(["1", "王小明"])
                try writer.writeTextRow(["2", "李四"])
                try writer.writeTextRow(["not-a-number", "张三"])
                for id in 4...1000 { try writer.writeTextRow(["\(id)", "x"]) }
            }
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == "22P02")
        #expect(error?.message.contains("invalid input syntax for type bigint") == true)
        #expect(error?.context?.contains("line 3") == true)
        #expect(error?.description.contains("not-a-number") == false)
        #expect(try count() == 0)
    }

    @Test("a bad row deep into a large COPY is reported even after libpq has left COPY mode")
    func badRowAfterManyRows() throws {
        let error = #expect(throws: PostgresError.self) {
            try connection.copyIn("COPY people FROM STDIN") { writer in
                for id in 1...200_000 {
                    try writer.writeTextRow([id == 5 ? "bad" : "\(id)", "some name that takes space"])
                }
            }
        }
        #expect(error?.sqlState == "22P02")
        #expect(try count() == 0)
    }

    @Test("a binary COPY with a duplicate key reports a unique violation and inserts nothing")
    func binaryDuplicate() throws {
        let error = #expect(throws: PostgresError.self) {
            try connection.copyIn("COPY people FROM STDIN (FORMAT binary)") { writer in
                var encoder = BinaryCopyEncoder()
                for id in [1, 2, 1] {
                    encoder.beginRow(fieldCount: 2)
                    encoder.writeInt64(Int64(id))
                    encoder.writeText("name \(id)")
                }
                encoder.writeTrailer()
                try encoder.flush(into: writer)
            }
        }
        #expect(error?.isUniqueViolation == true)
        #expect(error?.constraint == "people_pkey")
        #expect(try count() == 0)
    }

    struct GeneratorFailed: Error {}

    @Test("a COPY body that throws cancels the COPY and rethrows the caller's error")
    func bodyThrows() throws {
        #expect(throws: GeneratorFailed.self) {
            try connection.copyIn("COPY people FROM STDIN") { writer in
                for id in 1...10 { try writer.writeTextRow(["\(id)", "x"]) }
                try writer.flush()
                throw GeneratorFailed()
            }
        }
        #expect(try count() == 0)
        // The connection is still usable.
        try connection.execute("INSERT INTO people VALUES (1, 'a')")
        #expect(try count() == 1)
    }

    @Test("text COPY escapes tabs, newlines, backslashes and NULL")
    func textEscaping() throws {
        try connection.executeScript("CREATE TABLE notes (id bigint, body text)")
        let bodies: [String?] = ["tab\there", "line\nbreak", #"back\slash"#, nil, "王小明 芙蓉区", "\\N"]
        let copied = try connection.copyIn("COPY notes FROM STDIN") { writer in
            for (id, body) in bodies.enumerated() { try writer.writeTextRow(["\(id)", body]) }
        }
        #expect(copied == bodies.count)
        let back = try connection.query("SELECT body FROM notes ORDER BY id").map { try $0.decode(String?.self, column: "body") }
        #expect(back == bodies)
    }

    @Test("query refuses COPY statements and leaves the connection usable")
    func queryRefusesCopy() throws {
        #expect(throws: PostgresError.self) { try connection.query("COPY people FROM STDIN") }
        #expect(throws: PostgresError.self) { try connection.query("COPY people TO STDOUT") }
        #expect(try count() == 0)
    }
}

@Suite("COPY TO STDOUT streams rows to a closure")
struct CopyOutTests {
    @Test("every row arrives once, as one chunk per row")
    func rowsArrive() throws {
        let connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TABLE t AS SELECT g AS id, '王小明 ' || g AS name FROM generate_series(1, 20000) g")
        var lines = 0
        var sawChinese = false
        let count = try connection.copyOut("COPY t TO STDOUT") { chunk in
            lines += 1
            #expect(chunk.last == UInt8(ascii: "\n"))
            if String(decoding: chunk, as: UTF8.self).contains("王小明") { sawChinese = true }
        }
        #expect(count == 20_000)
        #expect(lines == 20_000)
        #expect(sawChinese)
    }

    struct Stop: Error {}

    @Test("a closure that throws stops the COPY, rethrows its error and leaves the connection usable")
    func closureThrows() throws {
        let connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100000) g")
        var seen = 0
        #expect(throws: Stop.self) {
            try connection.copyOut("COPY t TO STDOUT") { _ in
                seen += 1
                if seen == 10 { throw Stop() }
            }
        }
        #expect(seen == 10)
        #expect(try connection.query("SELECT count(*) FROM t")[0].decode(Int.self, at: 0) == 100_000)
    }
}
