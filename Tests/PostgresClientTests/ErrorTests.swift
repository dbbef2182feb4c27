import Foundation
import LocalPostgres
import PostgresClient
import Testing
import TestSupport

@Suite("Server errors carry SQLSTATE and the server's fields")
struct ServerErrorTests {
    let connection: Connection

    init() throws {
        connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TABLE cards (national_id text CONSTRAINT cards_national_id_key UNIQUE, name text)")
    }

    @Test("a unique violation carries SQLSTATE 23505 and the constraint name, and its description hides the key")
    func uniqueViolation() throws {
        try connection.execute("INSERT INTO cards VALUES ($1, $2)", ["110101199003074514", "王小明"])
        let error = #expect(throws: PostgresError.self) {
            try connection.execute("INSERT INTO cards VALUES ($1, $2)", ["110101199003074514", "王小明"])
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == "23505")
        #expect(error?.sqlStateClass == "23")
        #expect(error?.isUniqueViolation == true)
        #expect(error?.constraint == "cards_national_id_key")
        #expect(error?.table == "cards")
        #expect(error?.detail?.contains("already exists") == true)
        #expect(error?.description.contains("110101199003074514") == false)
        #expect(error?.description.contains("王小明") == false)
        #expect(error?.description.contains("23505") == true)
    }

    @Test("a failed statement keeps its SQL text, never its parameters, out of the description")
    func statementKept() throws {
        let sql: PostgresQuery = "INSERT INTO cards VALUES ($1, $2)"
        try connection.execute(sql, ["110101199003074514", "王小明"])
        let error = #expect(throws: PostgresError.self) { try connection.execute(sql, ["110101199003074514", "王小明"]) }
        #expect(error?.statement == sql.sql)
        #expect(error?.description.contains("INSERT") == false, "the description names the failure, not the statement")
        #expect(error?.detailedDescription.contains("STATEMENT: \(sql.sql)") == true)
    }

    @Test("a syntax error reports its position")
    func syntaxError() throws {
        let error = #expect(throws: PostgresError.self) { try connection.query("SELEC 1") }
        #expect(error?.sqlState == "42601")
        #expect(error?.position == 1)
    }

    @Test("an error's description never includes parameter values")
    func descriptionHidesParameters() throws {
        let error = #expect(throws: PostgresError.self) {
            try connection.query("SELECT $1::uuid", [.text("secret-personal-value")])
        }
        #expect(error?.sqlState == "22P02")
        #expect(error?.message.contains("secret-personal-value") == true)
        #expect(error?.description.contains("secret-personal-value") == false)
    }

    @Test("a text parameter containing NUL is refused before it reaches the server")
    func nulInText() throws {
        let error = #expect(throws: PostgresError.self) { try connection.query("SELECT $1::text", [.text("a\u{0}b")]) }
        #expect(error?.kind == .client)
        let inArray = #expect(throws: PostgresError.self) {
            try connection.query("SELECT $1::text[]", [.textArray(["fine", "a\u{0}b"])])
        }
        #expect(inArray?.kind == .client)
        #expect(inArray?.message.contains("element 2") == true)
    }

    @Test("escapeIdentifier quotes schema names safely")
    func escapeIdentifier() throws {
        let schema = try connection.escapeIdentifier(#"agency "one"; DROP"#)
        #expect(schema == #""agency ""one""; DROP""#)
        try connection.executeScript("CREATE SCHEMA \(schema); CREATE TABLE \(schema).t (x int)")
        let found = try connection.query("SELECT count(*) FROM pg_namespace WHERE nspname = $1", [#"agency "one"; DROP"#])
        #expect(try found[0].decode(Int.self, at: 0) == 1)
    }

    @Test("executeScript runs several statements and stops at the first failure")
    func script() throws {
        #expect(throws: PostgresError.self) {
            try connection.executeScript("INSERT INTO cards VALUES ('1', 'a'); INSERT INTO nowhere VALUES (1)")
        }
        #expect(try connection.query("SELECT count(*) FROM cards")[0].decode(Int.self, at: 0) == 0)
    }

    @Test("execute returns the number of affected rows")
    func affectedRows() throws {
        #expect(try connection.execute("INSERT INTO cards SELECT g::text, 'n' FROM generate_series(1, 5) g") == 5)
        #expect(try connection.execute("UPDATE cards SET name = 'm' WHERE national_id IN ('1', '2')") == 2)
        #expect(try connection.execute("CREATE INDEX ON cards (name)") == 0)
    }
}

@Suite("Decoding errors name the column")
struct DecodingErrorTests {
    let connection: Connection

    init() throws { connection = try TestDatabase.connect() }

    @Test("a missing column is named")
    func missingColumn() throws {
        let row = try connection.query("SELECT 1 AS id")[0]
        let error = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "nmae") }
        #expect(error?.kind == .decoding)
        #expect(error?.message.contains("\"nmae\"") == true)
    }

    @Test("NULL where a non-optional is requested names the column")
    func unexpectedNull() throws {
        let row = try connection.query("SELECT NULL::text AS middle_name")[0]
        let error = #expect(throws: PostgresError.self) { try row.decode(String.self, column: "middle_name") }
        #expect(error?.message.contains("middle_name") == true)
        #expect(try row.decode(String?.self, column: "middle_name") == nil)
    }

    @Test("a bad format names the column and its type but not the value")
    func badFormat() throws {
        let row = try connection.query("SELECT 'secret-value'::text AS birth_year")[0]
        let error = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "birth_year") }
        #expect(error?.message.contains("birth_year") == true)
        #expect(error?.message.contains("text") == true)
        #expect(error?.description.contains("secret-value") == false)
    }

    @Test("an out-of-range integer is a decoding error, not a crash")
    func overflow() throws {
        let row = try connection.query("SELECT 3000000000::bigint AS n")[0]
        #expect(throws: PostgresError.self) { try row.decode(Int32.self, column: "n") }
        #expect(try row.decode(Int64.self, column: "n") == 3_000_000_000)
    }
}

@Suite("Connection failures are clear errors, never crashes or leaked passwords")
struct ConnectionFailureTests {
    @Test("a socket directory that does not exist names the socket")
    func missingSocket() throws {
        let error = #expect(throws: PostgresError.self) {
            try Connection(conninfo: "postgresql:///cardsync?host=%2Fnonexistent%2Fsocketdir&user=postgres")
        }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("/nonexistent/socketdir") == true)
    }

    @Test("an unreachable TCP server names host and port and never the password")
    func unreachableTCP() throws {
        let error = #expect(throws: PostgresError.self) {
            try Connection(conninfo: "postgresql://alice:SuperSecret123@127.0.0.1:1/cardsync?connect_timeout=5")
        }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("127.0.0.1") == true)
        #expect(error?.message.contains("port 1") == true)
        #expect(error?.description.contains("SuperSecret123") == false)
        #expect(error?.detailedDescription.contains("SuperSecret123") == false)
    }

    @Test("an unparsable connection string is an error that does not echo it")
    func unparsable() throws {
        let error = #expect(throws: PostgresError.self) {
            try Connection(conninfo: "host=/tmp password=my secretword")
        }
        #expect(error?.kind == .connection)
        #expect(error?.detailedDescription.contains("secretword") == false)
    }

    @Test("a wrong password says password authentication failed and does not contain the password")
    func wrongPassword() throws {
        let directory = try TemporaryDirectory(prefix: "cardsync-pw")
        var cluster: LocalCluster?
        // The free port is only free when we look; retry if another process takes it first.
        for attempt in 1...3 {
            let candidate = try LocalCluster(
                directory: directory.url,
                options: .init(durability: .fastUnsafeForTests, port: try LocalCluster.freeLoopbackPort(), listenOnLoopback: true))
            do {
                try candidate.start()
                cluster = candidate
                break
            } catch where attempt < 3 {
                continue
            }
        }
        let server = try #require(cluster)
        defer { try? server.removeAll() }
        let admin = try Connection(conninfo: server.connectionURI())
        try admin.executeScript("CREATE ROLE clerk LOGIN PASSWORD 'right-password'")

        let wrong = server.loopbackURI(user: "clerk").replacingOccurrences(of: "clerk@", with: "clerk:WrongPassw0rd@")
        let error = #expect(throws: PostgresError.self) { try Connection(conninfo: wrong) }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("password authentication failed") == true)
        #expect(error?.message.contains("user clerk") == true)
        #expect(error?.detailedDescription.contains("WrongPassw0rd") == false)

        let right = try Connection(conninfo: server.loopbackURI(user: "clerk") + "?password=right-password")
        #expect(try right.query("SELECT current_user")[0].decode(String.self, at: 0) == "clerk")
    }
}
