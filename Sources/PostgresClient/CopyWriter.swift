import CLibPQ

/// The sink a `Connection.copyIn` body writes COPY data into.
///
/// Data is collected in a buffer of about 256 KiB and handed to `PQputCopyData` in large
/// pieces: few calls, and memory stays bounded however many rows are streamed. Lengths are
/// byte counts (UTF-8), never character counts.
///
/// Valid only inside the `copyIn` body; writing after it returned throws.
public final class CopyWriter {
    /// Flush once this many bytes are buffered.
    public static let bufferCapacity = 256 * 1024

    private let connection: Connection
    private var buffer: [UInt8]
    /// Set once the COPY ended early (the server rejected data or the connection broke).
    private(set) var failure: PostgresError?
    private var isOpen = true
    /// Bytes handed to libpq so far.
    public private(set) var bytesSent = 0

    init(connection: Connection) {
        self.connection = connection
        self.buffer = []
        buffer.reserveCapacity(Self.bufferCapacity)
    }

    /// Appends raw bytes (text or binary COPY format).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try checkUsable()
        if buffer.count + bytes.count > Self.bufferCapacity { try flush() }
        if bytes.count >= Self.bufferCapacity {
            try send(bytes)  // Large chunks go straight through instead of being copied twice.
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends a string's UTF-8 bytes.
    public func write(_ string: String) throws {
        var string = string
        try string.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends one row in COPY's default text format: tab-separated, `\N` for NULL, with
    /// backslash, tab, newline and carriage return escaped.
    public func writeTextRow(_ fields: [String?]) throws {
        var line = ""
        for (index, field) in fields.enumerated() {
            if index > 0 { line += "\t" }
            guard let field else { line += "\\N"; continue }
            for scalar in field.unicodeScalars {
                switch scalar {
                case "\\": line += "\\\\"
                case "\t": line += "\\t"
                case "\n": line += "\\n"
                case "\r": line += "\\r"
                default: line.unicodeScalars.append(scalar)
                }
            }
        }
        line += "\n"
        try write(line)
    }

    /// Hands everything buffered to libpq now.
    public func flush() throws {
        try checkUsable()
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try send($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() { isOpen = false }

    private func checkUsable() throws {
        if let failure { throw failure }
        guard isOpen else { throw PostgresError.client("the CopyWriter was used after its copyIn call returned") }
    }

    private func send(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // PQputCopyData takes an Int32 length.
            let length = min(bytes.count - offset, 64 * 1024 * 1024)
            let status = (bytes.baseAddress! + offset).withMemoryRebound(to: CChar.self, capacity: length) {
                PQputCopyData(connection.handle, $0, Int32(length))
            }
            guard status == 1 else {
                // libpq leaves COPY mode when the server has already rejected the data; the
                // server's error says why, libpq's own message ("no COPY in progress") does not.
                let libpqMessage = connectionErrorMessage(connection.handle)
                let broken = connectionIsBroken(connection.handle)
                let error = connection.drainResults()
                    ?? PostgresError(kind: broken ? .connection : .client,
                                     message: broken ? PostgresError.lostConnection(connection.handle, libpqMessage)
                                                     : "COPY data could not be sent: \(libpqMessage)")
                failure = error
                throw error
            }
            offset += length
            bytesSent += length
        }
    }
}
