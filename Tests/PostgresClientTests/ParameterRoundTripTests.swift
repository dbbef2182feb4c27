import Foundation
import PostgresClient
import Testing
import TestSupport

@Suite("Parameters round-trip through the server with their types")
struct ParameterRoundTripTests {
    let connection: Connection

    init() throws {
        connection = try TestDatabase.connect()
    }

    /// Sends `value` as `$1`, casts it to `sqlType` on the server and reads it back.
    private func roundTrip<T: PostgresDecodable>(_ value: PostgresValue, as sqlType: String, _ type: T.Type) throws -> T {
        let row = try #require(try connection.query("SELECT $1::\(unescaped: sqlType) AS value", [value]).first)
        return try row.decode(T.self, column: "value")
    }

    @Test("text keeps Chinese characters, quotes and backslashes")
    func text() throws {
        for value in ["王小明 芙蓉区", "O'Brien \"quoted\"", #"C:\path\to\file \\ end"#, "", "tab\tnew\nline", "emoji 🪪"] {
            #expect(try roundTrip(.text(value), as: "text", String.self) == value)
        }
    }

    @Test("integers keep their full range")
    func integers() throws {
        #expect(try roundTrip(.int64(.max), as: "bigint", Int64.self) == .max)
        #expect(try roundTrip(.int64(.min), as: "bigint", Int64.self) == .min)
        #expect(try roundTrip(.int32(.min), as: "integer", Int32.self) == .min)
        #expect(try roundTrip(.int16(-12), as: "smallint", Int16.self) == -12)
        #expect(try roundTrip(.int(42), as: "bigint", Int.self) == 42)
        #expect(try roundTrip(7, as: "bigint", Int.self) == 7)
    }

    @Test("booleans")
    func booleans() throws {
        #expect(try roundTrip(.bool(true), as: "boolean", Bool.self) == true)
        #expect(try roundTrip(false, as: "boolean", Bool.self) == false)
    }

    @Test("doubles keep every bit, including infinity and NaN")
    func doubles() throws {
        for value in [0.1, -1.5e-300, 1.7976931348623157e308, Double.infinity, -Double.infinity, 123456.789] {
            #expect(try roundTrip(.double(value), as: "double precision", Double.self) == value)
        }
        #expect(try roundTrip(.double(.nan), as: "double precision", Double.self).isNaN)
    }

    @Test("timestamps keep microseconds, before 2000 and before 1970 too")
    func timestamps() throws {
        for micros: Int64 in [0, 1_714_552_200_123_456, -1, -2_208_988_800_000_001, 946_684_800_000_000, 253_402_300_799_999_999] {
            let back = try roundTrip(.timestamp(microsecondsSince1970: micros), as: "timestamptz", PostgresTimestamp.self)
            #expect(back.microsecondsSince1970 == micros)
        }
    }

    @Test("timestamps read back the same instant whatever the session time zone")
    func timestampsInOtherTimeZones() throws {
        try connection.execute("SET TIME ZONE 'Asia/Kathmandu'")
        let micros: Int64 = 1_714_552_200_123_456
        #expect(try roundTrip(.timestamp(microsecondsSince1970: micros), as: "timestamptz", PostgresTimestamp.self).microsecondsSince1970 == micros)
        let date = Date(timeIntervalSince1970: 1_714_552_200.5)
        #expect(try roundTrip(.date(date), as: "timestamptz", Date.self) == date)
    }

    @Test("UUIDs")
    func uuids() throws {
        let id = UUID()
        #expect(try roundTrip(.uuid(id), as: "uuid", UUID.self) == id)
    }

    @Test("JSON is sent as jsonb")
    func json() throws {
        let row = try #require(try connection.query("SELECT pg_typeof($1)::text AS type, $1->>'name' AS name", [.json(#"{"name": "王小明", "n": 1}"#)]).first)
        #expect(try row.decode(String.self, column: "type") == "jsonb")
        #expect(try row.decode(String.self, column: "name") == "王小明")
    }

    @Test("bytea keeps every byte value, and empty bytea is not NULL")
    func bytea() throws {
        let bytes = (0...255).map(UInt8.init)
        #expect(try roundTrip(.bytea(bytes), as: "bytea", Data.self) == Data(bytes))
        #expect(try roundTrip(.bytea([]), as: "bytea", Data?.self) == Data())
    }

    @Test("text, uuid and bigint arrays, with awkward elements")
    func arrays() throws {
        let texts = ["a", "", "with, comma", "{braces}", "quote \" and \\ backslash", "NULL", "王小明 芙蓉区", " spaced "]
        #expect(try roundTrip(.textArray(texts), as: "text[]", [String].self) == texts)
        #expect(try roundTrip(.textArray([]), as: "text[]", [String].self) == [])
        let ids = [UUID(), UUID()]
        #expect(try roundTrip(.uuidArray(ids), as: "uuid[]", [UUID].self) == ids)
        #expect(try roundTrip(.int64Array([1, -2, .max]), as: "bigint[]", [Int64].self) == [1, -2, .max])
        // uuid and bigint arrays travel in binary: the empty one has no dimension at all.
        #expect(try roundTrip(.uuidArray([]), as: "uuid[]", [UUID].self) == [])
        #expect(try roundTrip(.int64Array([]), as: "bigint[]", [Int64].self) == [])
        let many = (0..<5_000).map { _ in UUID() }
        #expect(try roundTrip(.uuidArray(many), as: "uuid[]", [UUID].self) == many)
        let withNull = try #require(try connection.query("SELECT ARRAY['x', NULL]::text[] AS value").first)
        #expect(try withNull.decode([String?].self, column: "value") == ["x", nil])
    }

    @Test("nil is SQL NULL and decodes as an optional")
    func null() throws {
        #expect(try roundTrip(.null, as: "text", String?.self) == nil)
        #expect(try roundTrip(nil, as: "bigint", Int64?.self) == nil)
        #expect(try roundTrip(PostgresValue(Optional<String>.none), as: "text", String?.self) == nil)
        #expect(try roundTrip(PostgresValue(Optional("x")), as: "text", String?.self) == "x")
    }

    @Test("a row written with every type reads back identically")
    func everyTypeInATable() throws {
        try connection.executeScript("""
            CREATE TABLE everything (
                t text, i bigint, b boolean, d double precision, ts timestamptz, u uuid,
                j jsonb, by bytea, ta text[], ua uuid[], ia bigint[], n text)
            """)
        let id = UUID()
        let inserted = try connection.execute(
            "INSERT INTO everything VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [.text("王小明 芙蓉区"), .int64(-5), .bool(true), .double(2.5), .timestamp(microsecondsSince1970: 1_000_001),
             .uuid(id), .json("[1,2]"), .bytea([0, 1]), .textArray(["x"]), .uuidArray([id]), .int64Array([9]), .null])
        #expect(inserted == 1)
        let row = try #require(try connection.query("SELECT * FROM everything").first)
        #expect(try row.decode(String.self, column: "t") == "王小明 芙蓉区")
        #expect(try row.decode(Int.self, column: "i") == -5)
        #expect(try row.decode(Bool.self, column: "b"))
        #expect(try row.decode(Double.self, column: "d") == 2.5)
        #expect(try row.decode(PostgresTimestamp.self, column: "ts").microsecondsSince1970 == 1_000_001)
        #expect(try row.decode(UUID.self, column: "u") == id)
        #expect(try row.decode(String.self, column: "j") == "[1, 2]")
        #expect(try row.decode(Data.self, column: "by") == Data([0, 1]))
        #expect(try row.decode([String].self, column: "ta") == ["x"])
        #expect(try row.decode([UUID].self, column: "ua") == [id])
        #expect(try row.decode([Int64].self, column: "ia") == [9])
        #expect(try row.decode(String?.self, column: "n") == nil)
        #expect(try row.isNull(column: "n"))
        #expect(try row.decode(String.self, at: 0) == "王小明 芙蓉区")
    }
}
