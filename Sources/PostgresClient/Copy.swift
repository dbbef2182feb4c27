import CLibPQ

extension Connection {
    /// Streams data into `COPY … FROM STDIN`, returning the row count from the command tag.
    ///
    /// `body` writes rows (text, CSV or binary COPY format, as the statement says) into the
    /// `CopyWriter`, which sends them in large chunks: memory stays bounded for any number of
    /// rows. If `body` throws, the COPY is cancelled (`PQputCopyEnd` with a reason), so nothing
    /// is inserted, and the body's error is rethrown. If the server rejects a row, its error
    /// (SQLSTATE, message, detail, context with the line number) is thrown.
    @discardableResult
    public func copyIn(_ statement: PostgresQuery, _ body: (CopyWriter) throws -> Void) throws -> Int {
        // COPY takes no bind parameters: its values are the rows.
        precondition(statement.binds.isEmpty, "a COPY statement cannot bind values")
        try startCopy(statement.sql, expecting: PGRES_COPY_IN, direction: "FROM STDIN")
        let writer = CopyWriter(connection: self)
        defer { writer.close() }
        do {
            try body(writer)
            try writer.flush()
        } catch {
            if writer.failure == nil {
                // The reason is fixed text: the caller's error may contain data values and
                // would end up in the server log.
                _ = PQputCopyEnd(handle, "cancelled by the client")
                drainResults()
            }
            throw error
        }
        if let failure = writer.failure { throw failure }
        guard PQputCopyEnd(handle, nil) == 1 else {
            let message = connectionErrorMessage(handle)
            throw drainResults() ?? PostgresError(kind: .connection, message: "could not finish COPY: \(message)")
        }
        return try finishCopy()
    }

    /// Streams the output of `COPY … TO STDOUT`, calling `chunk` once per data message (in text
    /// and CSV format that is exactly one row, newline included). The bytes are only valid
    /// during the call. Returns the row count from the command tag.
    ///
    /// If `chunk` throws, the statement is cancelled on the server, the rest of the stream is
    /// discarded, and the closure's error is rethrown.
    @discardableResult
    public func copyOut(_ statement: PostgresQuery, _ chunk: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        precondition(statement.binds.isEmpty, "a COPY statement cannot bind values")
        try startCopy(statement.sql, expecting: PGRES_COPY_OUT, direction: "TO STDOUT")
        var chunkError: Error?
        while true {
            var data: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &data, 0)
            guard length > 0, let data else { break }  // -1: done; -2: failure, reported below.
            defer { PQfreemem(data) }
            guard chunkError == nil else { continue }
            do {
                try chunk(UnsafeRawBufferPointer(start: data, count: Int(length)))
            } catch {
                chunkError = error
                cancelCurrentStatement()
            }
        }
        if let chunkError {
            drainResults()
            throw chunkError
        }
        return try finishCopy()
    }

    private func startCopy(_ sql: String, expecting expected: ExecStatusType, direction: String) throws {
        guard let result = sql.withCString({ PQexec(handle, $0) }) else {
            throw PostgresError(kind: .connection, message: connectionErrorMessage(handle))
        }
        let status = PQresultStatus(result)
        if status == expected {
            PQclear(result)
            return
        }
        let error = status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE
            ? PostgresError(result: result, connection: handle)
            : PostgresError.client("the statement did not start a COPY \(direction)")
        PQclear(result)
        drainResults()
        throw error
    }

    /// Reads the final results of a COPY (there can be more than one; all must be read).
    private func finishCopy() throws -> Int {
        var rows = 0
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK {
                rows = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
            } else if firstError == nil, status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE {
                firstError = PostgresError(result: result, connection: handle)
            }
            PQclear(result)
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                drainResults()  // Unexpected: end it rather than loop on it.
                break
            }
        }
        if let firstError { throw firstError }
        return rows
    }

    /// Asks the server to cancel the running statement (a separate connection, as libpq does it).
    private func cancelCurrentStatement() {
        guard let cancel = PQgetCancel(handle) else { return }
        defer { PQfreeCancel(cancel) }
        var errorBuffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &errorBuffer, Int32(errorBuffer.count))
    }
}
