import Foundation

/// The wire form of a parameter list, packed into one byte buffer.
///
/// libpq wants parallel C arrays of pointers, lengths and formats that must stay valid for the
/// whole `PQexecParams` call. Packing every value into one owned `[UInt8]` and deriving the
/// pointers inside a single `withUnsafeBufferPointer` keeps that lifetime obvious and costs one
/// allocation instead of one per parameter.
///
/// Fixed-size types and arrays of them travel in binary (exact: no float or calendar formatting
/// to get wrong, and no formatting cost); text-like values and text arrays travel as text.
struct ParameterEncoding {
    /// Starts with one padding byte so the buffer always has a base address: an empty value
    /// (e.g. an empty bytea) must get a non-NULL pointer, or libpq would send SQL NULL.
    private(set) var bytes: [UInt8] = [0]
    private(set) var types: [UInt32] = []
    /// Offset into `bytes`, or nil for SQL NULL.
    private(set) var offsets: [Int?] = []
    private(set) var lengths: [Int32] = []
    private(set) var formats: [Int32] = []

    /// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
    static let postgresEpochOffsetMicroseconds: Int64 = 946_684_800_000_000

    init(_ values: [PostgresValue]) throws {
        types.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            try append(value, number: index + 1)
        }
    }

    private mutating func append(_ value: PostgresValue, number: Int) throws {
        switch value {
        case .null:
            types.append(PostgresType.unspecified.rawValue)
            offsets.append(nil)
            lengths.append(0)
            formats.append(0)
        case .text(let string):
            try appendText(string, type: .text, number: number)
        case .json(let string):
            try appendText(string, type: .jsonb, number: number)
        case .int16(let value):
            appendBinary(.int2) { buffer in withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) } }
        case .int32(let value):
            appendBinary(.int4) { buffer in withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) } }
        case .int64(let value):
            appendBinary(.int8) { buffer in withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) } }
        case .bool(let value):
            appendBinary(.bool) { $0.append(value ? 1 : 0) }
        case .double(let value):
            appendBinary(.float8) { buffer in
                withUnsafeBytes(of: value.bitPattern.bigEndian) { buffer.append(contentsOf: $0) }
            }
        case .timestamp(let microseconds):
            let (sincePostgresEpoch, overflow) = microseconds.subtractingReportingOverflow(
                Self.postgresEpochOffsetMicroseconds)
            if overflow { throw PostgresError.client("parameter $\(number): timestamp is out of range") }
            appendBinary(.timestamptz) { buffer in
                withUnsafeBytes(of: sincePostgresEpoch.bigEndian) { buffer.append(contentsOf: $0) }
            }
        case .uuid(let uuid):
            appendBinary(.uuid) { buffer in withUnsafeBytes(of: uuid.uuid) { buffer.append(contentsOf: $0) } }
        case .bytea(let data):
            appendBinary(.bytea) { $0.append(contentsOf: data) }
        case .textArray(let strings):
            // Binary, like the id arrays: no quoting on this side, no parsing of a literal on
            // the server's (a batch's child identity numbers go this way).
            if let bad = strings.firstIndex(where: { $0.utf8.contains(0) }) {
                throw PostgresError.client("parameter $\(number) (text[]) element \(bad + 1) contains a NUL character, which PostgreSQL text cannot hold")
            }
            appendBinary(.textArray) { buffer in
                func int32(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) } }
                int32(strings.isEmpty ? 0 : 1)   // dimensions
                int32(0)                         // no NULL elements
                int32(Int32(bitPattern: PostgresType.text.rawValue))
                guard !strings.isEmpty else { return }
                int32(Int32(strings.count))      // length of the dimension
                int32(1)                         // lower bound
                for string in strings {
                    int32(Int32(string.utf8.count))
                    buffer.append(contentsOf: string.utf8)
                }
            }
        case .uuidArray(let uuids):
            appendBinaryArray(.uuidArray, element: .uuid, uuids, size: 16) { uuid, buffer in
                withUnsafeBytes(of: uuid.uuid) { buffer.append(contentsOf: $0) }
            }
        case .int64Array(let numbers):
            appendBinaryArray(.int8Array, element: .int8, numbers, size: 8) { number, buffer in
                withUnsafeBytes(of: number.bigEndian) { buffer.append(contentsOf: $0) }
            }
        }
    }

    /// A one-dimensional array of a fixed-size type without NULLs, in binary: a batch's ids
    /// travel as 16 bytes each instead of being formatted as text (which cost a sync seconds).
    /// `write` appends one element's `size` bytes.
    private mutating func appendBinaryArray<Element>(_ type: PostgresType, element: PostgresType, _ values: [Element],
                                                     size: Int32, write: (Element, inout [UInt8]) -> Void) {
        appendBinary(type) { buffer in
            func int32(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) } }
            int32(values.isEmpty ? 0 : 1)   // dimensions
            int32(0)                        // no NULL elements
            int32(Int32(bitPattern: element.rawValue))
            guard !values.isEmpty else { return }
            int32(Int32(values.count))      // length of the dimension
            int32(1)                        // lower bound
            buffer.reserveCapacity(buffer.count + values.count * (4 + Int(size)))
            for value in values {
                int32(size)
                write(value, &buffer)
            }
        }
    }

    /// Text parameters are NUL-terminated C strings, so an embedded NUL would silently cut the
    /// value short; PostgreSQL cannot store NUL in text anyway, so refuse it up front.
    private mutating func appendText(_ string: String, type: PostgresType, number: Int) throws {
        let start = bytes.count
        bytes.append(contentsOf: string.utf8)
        if bytes[start...].contains(0) {
            throw PostgresError.client("parameter $\(number) (\(type)) contains a NUL character, which PostgreSQL text cannot hold")
        }
        bytes.append(0)
        types.append(type.rawValue)
        offsets.append(start)
        lengths.append(Int32(bytes.count - start - 1))
        formats.append(0)
    }

    private mutating func appendBinary(_ type: PostgresType, _ write: (inout [UInt8]) -> Void) {
        let start = bytes.count
        write(&bytes)
        types.append(type.rawValue)
        offsets.append(start)
        lengths.append(Int32(bytes.count - start))
        formats.append(1)
    }

    /// Calls `body` with the C arrays `PQexecParams` takes. The pointers are valid only inside.
    func withCArrays<R>(
        _ body: (
            _ types: UnsafePointer<UInt32>?, _ values: UnsafePointer<UnsafePointer<CChar>?>?,
            _ lengths: UnsafePointer<Int32>?, _ formats: UnsafePointer<Int32>?
        ) throws -> R
    ) rethrows -> R {
        try bytes.withUnsafeBufferPointer { storage in
            let base = UnsafeRawPointer(storage.baseAddress)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                guard let offset, let base else { return nil }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return try types.withUnsafeBufferPointer { types in
                try pointers.withUnsafeBufferPointer { values in
                    try lengths.withUnsafeBufferPointer { lengths in
                        try formats.withUnsafeBufferPointer { formats in
                            try body(types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }
}
