import Foundation

/// Builds `COPY … FROM STDIN (FORMAT binary)` data: the PGCOPY header, rows of length-prefixed
/// fields in each type's binary send format, and the trailer.
///
/// Binary COPY skips the server's text parsing, which is what makes bulk sync fast. Everything
/// is appended to one reusable `[UInt8]` buffer (no per-field allocation); hand it to the
/// `CopyWriter` with `flush(into:)` every so often so memory stays bounded:
///
/// ```swift
/// try connection.copyIn("COPY cards (id, name, issued_at) FROM STDIN (FORMAT binary)") { writer in
///     var encoder = BinaryCopyEncoder()
///     for card in cards {
///         encoder.beginRow(fieldCount: 3)
///         encoder.writeUUID(card.id)
///         encoder.writeText(card.name)
///         encoder.writeTimestamp(microsecondsSince1970: card.issuedAt)
///         try encoder.flushIfNeeded(into: writer)
///     }
///     encoder.writeTrailer()
///     try encoder.flush(into: writer)
/// }
/// ```
///
/// The field types must match the table's column types exactly (`int8` for a bigint column,
/// `int4` for integer…): binary format has no implicit casts, and a mismatch is rejected by the
/// server with "incorrect binary data format".
public struct BinaryCopyEncoder {
    /// The bytes encoded and not yet flushed.
    public private(set) var buffer: [UInt8]
    /// `flushIfNeeded` sends the buffer once it holds this many bytes.
    public var flushThreshold: Int

    /// Creates an encoder and writes the PGCOPY header.
    public init(flushThreshold: Int = CopyWriter.bufferCapacity) {
        self.flushThreshold = flushThreshold
        buffer = []
        buffer.reserveCapacity(flushThreshold + 4096)
        // Signature "PGCOPY\n\377\r\n\0", flags (no OIDs), header extension length.
        buffer.append(contentsOf: [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00])
        appendInteger(Int32(0))
        appendInteger(Int32(0))
    }

    /// Starts a row; exactly `fieldCount` fields must follow.
    public mutating func beginRow(fieldCount: Int) {
        appendInteger(Int16(fieldCount))
    }

    /// Ends the data; call once after the last row.
    public mutating func writeTrailer() {
        appendInteger(Int16(-1))
    }

    /// SQL NULL (any column type).
    public mutating func writeNull() { appendInteger(Int32(-1)) }

    /// `bigint` (int8).
    public mutating func writeInt64(_ value: Int64) {
        appendInteger(Int32(8))
        appendInteger(value)
    }

    /// `integer` (int4).
    public mutating func writeInt32(_ value: Int32) {
        appendInteger(Int32(4))
        appendInteger(value)
    }

    /// `smallint` (int2).
    public mutating func writeInt16(_ value: Int16) {
        appendInteger(Int32(2))
        appendInteger(value)
    }

    /// `boolean`.
    public mutating func writeBool(_ value: Bool) {
        appendInteger(Int32(1))
        buffer.append(value ? 1 : 0)
    }

    /// `double precision` (float8).
    public mutating func writeDouble(_ value: Double) {
        appendInteger(Int32(8))
        appendInteger(value.bitPattern)
    }

    /// `text` / `varchar` (UTF-8; PostgreSQL text cannot contain NUL).
    public mutating func writeText(_ value: String) {
        let utf8 = value.utf8
        appendInteger(Int32(utf8.count))
        buffer.append(contentsOf: utf8)
    }

    /// `uuid` (16 bytes).
    public mutating func writeUUID(_ value: UUID) {
        appendInteger(Int32(16))
        withUnsafeBytes(of: value.uuid) { buffer.append(contentsOf: $0) }
    }

    /// `timestamptz` (or `timestamp`), from microseconds since 1970-01-01 UTC; the wire value is
    /// microseconds since 2000-01-01.
    public mutating func writeTimestamp(microsecondsSince1970: Int64) {
        appendInteger(Int32(8))
        appendInteger(microsecondsSince1970 &- ParameterEncoding.postgresEpochOffsetMicroseconds)
    }

    /// `timestamptz` from a `Date`, rounded to microseconds.
    public mutating func writeTimestamp(_ date: Date) {
        writeTimestamp(microsecondsSince1970: Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
    }

    /// `date`, from days since 1970-01-01; the wire value is days since 2000-01-01.
    public mutating func writeDate(daysSince1970: Int32) {
        appendInteger(Int32(4))
        appendInteger(daysSince1970 &- 10_957)
    }

    /// `jsonb` from JSON text (format version byte 1, then the text; the server validates it).
    public mutating func writeJSONB(_ json: String) {
        let utf8 = json.utf8
        appendInteger(Int32(utf8.count + 1))
        buffer.append(1)
        buffer.append(contentsOf: utf8)
    }

    /// `jsonb` from JSON text already in UTF-8 (no copy through a `String`).
    public mutating func writeJSONB(utf8 json: [UInt8]) {
        appendInteger(Int32(json.count + 1))
        buffer.append(1)
        buffer.append(contentsOf: json)
    }

    /// `bytea`.
    public mutating func writeBytes(_ bytes: [UInt8]) {
        appendInteger(Int32(bytes.count))
        buffer.append(contentsOf: bytes)
    }

    /// `text[]` (one dimension, no NULL elements).
    public mutating func writeTextArray(_ values: [String]) {
        var length = 12  // ndim, has-null flag, element type
        if !values.isEmpty { length += 8 }  // dimension size and lower bound
        for value in values { length += 4 + value.utf8.count }
        appendInteger(Int32(length))
        appendInteger(Int32(values.isEmpty ? 0 : 1))
        appendInteger(Int32(0))
        appendInteger(Int32(bitPattern: PostgresType.text.rawValue))
        if !values.isEmpty {
            appendInteger(Int32(values.count))
            appendInteger(Int32(1))
        }
        for value in values { writeText(value) }
    }

    /// Number of bytes waiting in the buffer.
    public var count: Int { buffer.count }

    /// Sends the buffer to the writer and empties it, keeping its capacity.
    public mutating func flush(into writer: CopyWriter) throws {
        guard !buffer.isEmpty else { return }
        try writer.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Calls `flush(into:)` once the buffer has reached `flushThreshold`; call it after each row.
    public mutating func flushIfNeeded(into writer: CopyWriter) throws {
        if buffer.count >= flushThreshold { try flush(into: writer) }
    }

    @inline(__always)
    private mutating func appendInteger<I: FixedWidthInteger>(_ value: I) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }
}
