import Foundation
import PostgresClient
import Testing
import TestSupport

/// The query type: every interpolated value is a bind parameter, SQL text goes in only as
/// `unescaped:` (a bare String does not compile: see the type's documentation).
@Suite("PostgresQuery")
struct PostgresQueryTests {
    @Test("interpolated values become $1, $2, … in order; unescaped text is spliced; literals stay as they are")
    func building() {
        let code = "CS-FR-001'; DROP TABLE x; --"
        let columns = "code, name"
        let query: PostgresQuery = "SELECT \(unescaped: columns) FROM t WHERE code = \(.text(code)) AND n > \(.int64(3))"
        #expect(query.sql == "SELECT code, name FROM t WHERE code = $1 AND n > $2")
        #expect(query.binds == [.text(code), .int64(3)])
        #expect(query.description == query.sql, "a description shows no value")
        let literal: PostgresQuery = "SELECT 1"
        #expect(literal.sql == "SELECT 1" && literal.binds.isEmpty)
        #expect(PostgresQuery(unsafeSQL: "SELECT $1", binds: [.int32(1)]).binds == [.int32(1)])
    }

    @Test("against the server: a value that looks like SQL is only a value")
    func boundOnTheServer() throws {
        let connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TEMP TABLE names (n text)")
        let hostile = "x'); DROP TABLE names; --"
        try connection.execute("INSERT INTO names VALUES (\(.text(hostile))), (\(.text("王小明")))")
        let rows = try connection.query("SELECT n FROM names WHERE n = \(.text(hostile)) OR n = \(.text("王小明")) ORDER BY n")
        #expect(try rows.map { try $0.decode(String.self, at: 0) } == [hostile, "王小明"].sorted())
        // $n parameters given apart still work, as before.
        let count = try connection.query("SELECT count(*) FROM names WHERE n <> $1", [.text(hostile)])
        #expect(try count[0].decode(Int64.self, at: 0) == 1)
    }
}
