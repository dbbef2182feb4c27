import CLibPQ

/// An open transaction that outlives one closure: begun with its options, ended by `commit()`
/// or `rollback()`, and rolled back when dropped without either, so no code path (an error,
/// an early return) can leave a connection inside a transaction it has forgotten.
///
/// `withTransaction` is the right tool when the work fits in a closure; this is for a
/// transaction whose commit must wait for something else, such as the merge's projection
/// transaction, committed only after the ledger's transaction on another connection.
public final class Transaction {
    public let connection: Connection
    private var open = true

    /// Begins a transaction on `connection`, which must be idle (not inside one already).
    public init(on connection: Connection, isolation: IsolationLevel? = nil) throws {
        guard PQtransactionStatus(connection.handle) == PQTRANS_IDLE else {
            throw PostgresError.client("a transaction handle needs an idle connection; this one is inside a transaction already")
        }
        self.connection = connection
        try connection.executeScript(isolation.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN")
    }

    public var isOpen: Bool { open }

    /// Commits. A transaction in which a statement failed is rolled back by the server instead;
    /// that is an error here, never a silent success.
    public func commit() throws {
        guard open else { throw PostgresError.client("the transaction was already ended") }
        open = false
        let result = try connection.run("COMMIT", [])
        if result.commandTag == "ROLLBACK" {
            throw PostgresError.client("the transaction was rolled back instead of committed, because a statement inside it failed")
        }
    }

    /// Rolls back (does nothing if already ended). Errors are swallowed: a broken connection has
    /// rolled back already, and the caller is usually on an error path with a better message.
    public func rollback() {
        guard open else { return }
        open = false
        try? connection.executeScript("ROLLBACK")
    }

    deinit { rollback() }
}
