import CLibPQ

/// The SQL isolation levels PostgreSQL implements.
public enum IsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

extension Connection {
    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    ///
    /// - The body's error is the one rethrown, even if the ROLLBACK fails too (the first error is
    ///   the one that explains what happened).
    /// - If a statement failed inside the body and the body swallowed the error, PostgreSQL turns
    ///   the COMMIT into a ROLLBACK; that is reported as an error rather than a silent success.
    /// - Called inside another transaction, it uses a SAVEPOINT, so the inner block can fail
    ///   without aborting the outer one. `isolation` must then be nil (it can only be chosen at
    ///   the start of the outermost transaction).
    public func withTransaction<T>(
        isolation: IsolationLevel? = nil,
        _ body: (Connection) throws -> T
    ) throws -> T {
        if PQtransactionStatus(handle) != PQTRANS_IDLE {
            guard isolation == nil else {
                throw PostgresError.client("an isolation level can only be set on the outermost transaction")
            }
            return try withSavepoint(body)
        }
        try executeScript(isolation.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN")
        let value: T
        do {
            value = try body(self)
        } catch {
            try? executeScript("ROLLBACK")
            throw error
        }
        let commit = try run("COMMIT", [])
        if commit.commandTag == "ROLLBACK" {
            throw PostgresError.client("the transaction was rolled back instead of committed, because a statement inside it failed")
        }
        return value
    }

    private func withSavepoint<T>(_ body: (Connection) throws -> T) throws -> T {
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        let name = "cardsync_savepoint_\(savepointDepth)"
        try executeScript("SAVEPOINT \(name)")
        let value: T
        do {
            value = try body(self)
        } catch {
            try? executeScript("ROLLBACK TO SAVEPOINT \(name); RELEASE SAVEPOINT \(name)")
            throw error
        }
        try executeScript("RELEASE SAVEPOINT \(name)")
        return value
    }
}
