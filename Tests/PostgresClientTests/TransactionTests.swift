import PostgresClient
import Testing
import TestSupport

@Suite("Transactions commit everything or nothing")
struct TransactionTests {
    let connection: Connection

    init() throws {
        connection = try TestDatabase.connect()
        try connection.executeScript("CREATE TABLE cards (id bigint PRIMARY KEY, name text NOT NULL)")
    }

    private func count() throws -> Int {
        try connection.query("SELECT count(*) AS n FROM cards")[0].decode(Int.self, column: "n")
    }

    struct Abort: Error {}

    @Test("a body that returns commits its statements and its value")
    func commitsOnSuccess() throws {
        let value = try connection.withTransaction { tx in
            try tx.execute("INSERT INTO cards VALUES ($1, $2)", [1, "王小明"])
            return "done"
        }
        #expect(value == "done")
        #expect(try count() == 1)
    }

    @Test("a body that throws rolls back, and its own error is rethrown")
    func bodyThrowingRollsBack() throws {
        #expect(throws: Abort.self) {
            try connection.withTransaction { tx in
                try tx.execute("INSERT INTO cards VALUES ($1, $2)", [1, "a"])
                throw Abort()
            }
        }
        #expect(try count() == 0)
    }

    @Test("a failed statement inside withTransaction leaves nothing behind")
    func failedStatementLeavesNothing() throws {
        let error = #expect(throws: PostgresError.self) {
            try connection.withTransaction { tx in
                try tx.execute("INSERT INTO cards VALUES ($1, $2)", [1, "a"])
                try tx.execute("INSERT INTO cards VALUES ($1, $2)", [2, .null])  // NOT NULL violation
            }
        }
        #expect(error?.isNotNullViolation == true)
        #expect(try count() == 0)
        // The connection is usable afterwards.
        try connection.execute("INSERT INTO cards VALUES (3, 'c')")
        #expect(try count() == 1)
    }

    @Test("a failed statement whose error the body swallows still rolls back, and says so")
    func swallowedFailureIsReported() throws {
        #expect(throws: PostgresError.self) {
            try connection.withTransaction { tx in
                try tx.execute("INSERT INTO cards VALUES (1, 'a')")
                _ = try? tx.execute("INSERT INTO cards VALUES (1, 'duplicate')")
            }
        }
        #expect(try count() == 0)
    }

    @Test("a nested withTransaction rolls back only its own part")
    func nestedUsesSavepoint() throws {
        try connection.withTransaction { tx in
            try tx.execute("INSERT INTO cards VALUES (1, 'outer')")
            _ = try? tx.withTransaction { inner in
                try inner.execute("INSERT INTO cards VALUES (2, 'inner')")
                try inner.execute("INSERT INTO cards VALUES (1, 'duplicate')")
            }
        }
        #expect(try count() == 1)
    }

    @Test("an isolation level can be chosen")
    func isolationLevel() throws {
        let level = try connection.withTransaction(isolation: .serializable) { tx in
            try tx.query("SHOW transaction_isolation")[0].decode(String.self, at: 0)
        }
        #expect(level == "serializable")
    }
}
