import CLibPQ

/// The rows a statement returned.
///
/// The underlying `PGresult` is owned by a reference-counted handle that calls `PQclear` when the
/// last `QueryResult` or `Row` referring to it goes away, so values are read straight from
/// libpq's memory without a second copy, and nothing leaks on an early `throw`.
/// A finished `PGresult` is read-only, so results may be handed to other threads.
public struct QueryResult: RandomAccessCollection, Sendable {
    let handle: ResultHandle

    init(handle: ResultHandle) { self.handle = handle }

    /// The result columns, in order.
    public var columns: [Column] { handle.columns }
    /// The command tag, e.g. `INSERT 0 3`, `UPDATE 2`, `SELECT 10`.
    public var commandTag: String { handle.commandTag }
    /// Rows inserted, updated, deleted, selected, copied…: the count in the command tag (0 when
    /// the command reports none).
    public var affectedRows: Int { handle.affectedRows }

    public var startIndex: Int { 0 }
    public var endIndex: Int { handle.rowCount }
    public subscript(position: Int) -> Row {
        precondition(position >= 0 && position < handle.rowCount, "row index \(position) out of range")
        return Row(handle: handle, index: position)
    }
}

/// A result column's name and type.
public struct Column: Sendable, Hashable {
    public var name: String
    public var type: PostgresType
}

/// Owns one `PGresult` and clears it exactly once.
final class ResultHandle: @unchecked Sendable {
    // @unchecked: the PGresult is never mutated after construction; libpq documents finished
    // results as safe to read from any thread.
    let pointer: OpaquePointer
    let columns: [Column]
    let rowCount: Int
    /// First column with each name; names are compared exactly as the server sent them.
    let columnIndex: [String: Int]

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        let count = Int(PQnfields(pointer))
        var columns: [Column] = []
        columns.reserveCapacity(count)
        var index: [String: Int] = [:]
        for column in 0..<count {
            let name = PQfname(pointer, Int32(column)).map { String(cString: $0) } ?? ""
            columns.append(Column(name: name, type: PostgresType(rawValue: PQftype(pointer, Int32(column)))))
            if index[name] == nil { index[name] = column }
        }
        self.columns = columns
        self.columnIndex = index
        self.rowCount = Int(PQntuples(pointer))
    }

    deinit { PQclear(pointer) }

    var commandTag: String { PQcmdStatus(pointer).map { String(cString: $0) } ?? "" }
    var affectedRows: Int { PQcmdTuples(pointer).flatMap { Int(String(cString: $0)) } ?? 0 }

    /// The text-format bytes of one cell, or nil for SQL NULL. Valid while `self` is alive.
    func withCell<R>(row: Int, column: Int, _ body: (UnsafeBufferPointer<UInt8>?) throws -> R) rethrows -> R {
        let r = Int32(row)
        let c = Int32(column)
        if PQgetisnull(pointer, r, c) != 0 { return try body(nil) }
        let length = Int(PQgetlength(pointer, r, c))
        guard let value = PQgetvalue(pointer, r, c) else { return try body(nil) }
        return try value.withMemoryRebound(to: UInt8.self, capacity: length) {
            try body(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}
