/// Writes JSON text.
///
/// - `JSONValue` objects are written with their keys sorted by UTF-8 bytes, so the same value
///   always gives the same bytes (stable hashes, stable comparisons, stable files).
/// - `OrderedJSON` writes objects with keys in the order given, for lines people read
///   (`{"line": .., "raw": .., "error": .., "detail": ..}`) and for CLI output.
/// - Strings escape `"`, `\` and control characters (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`);
///   everything else, non-ASCII included, is written as UTF-8. U+2028/U+2029 are written as is
///   (valid JSON).
/// - Doubles use Swift's shortest round-trip representation (`0.1`, `1e-07`, `100.0`: an integral
///   double keeps its `.0` so it reads back as a double). NaN and infinities, which JSON cannot
///   represent, are written as `null`.
/// - Compact output has no spaces; `pretty` output indents by two spaces, one member per line,
///   `"key": value`, and writes empty containers as `{}` and `[]`.
public enum JSONWriter {
    // MARK: JSONValue (sorted keys)

    public static func string(_ value: JSONValue, pretty: Bool = false) -> String {
        String(decoding: bytes(value, pretty: pretty), as: UTF8.self)
    }

    public static func bytes(_ value: JSONValue, pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out, pretty: pretty)
        return out
    }

    public static func write(_ value: JSONValue, into out: inout [UInt8], pretty: Bool = false) {
        writeValue(value, into: &out, indent: pretty ? 0 : -1)
    }

    /// Compact, with each object's keys in whatever order it holds them: for text that only
    /// PostgreSQL reads into `jsonb`, which orders keys itself. Sorting them is a measurable
    /// share of a bulk sync's client time.
    public static func writeForJSONB(_ value: JSONValue, into out: inout [UInt8]) {
        writeValue(value, into: &out, indent: -1, sortKeys: false)
    }

    // MARK: OrderedJSON (keys in the given order)

    public static func string(_ value: OrderedJSON, pretty: Bool = false) -> String {
        String(decoding: bytes(value, pretty: pretty), as: UTF8.self)
    }

    public static func bytes(_ value: OrderedJSON, pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out, pretty: pretty)
        return out
    }

    public static func write(_ value: OrderedJSON, into out: inout [UInt8], pretty: Bool = false) {
        writeOrdered(value, into: &out, indent: pretty ? 0 : -1)
    }

    /// An object with keys in the given order: `JSONWriter.object([("line", 3), ("raw", "...")])`.
    public static func object(_ fields: [(String, JSONValue)], pretty: Bool = false) -> String {
        string(OrderedJSON.object(fields.map { ($0.0, .value($0.1)) }), pretty: pretty)
    }

    /// Like `object(_:pretty:)`, as UTF-8 bytes.
    public static func objectBytes(_ fields: [(String, JSONValue)], pretty: Bool = false) -> [UInt8] {
        bytes(OrderedJSON.object(fields.map { ($0.0, .value($0.1)) }), pretty: pretty)
    }

    // MARK: Pieces

    /// Appends `s` as a JSON string literal (quotes included).
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { writeString(utf8: UnsafeRawBufferPointer($0), into: &out) }
    }

    /// Appends UTF-8 bytes (assumed valid) as a JSON string literal.
    ///
    /// Besides what JSON requires, DEL, the C1 controls and the bidirectional overrides and
    /// isolates are written as `\u` escapes: the value is the same, but JSON printed on a
    /// terminal cannot drive it or show a queue's text reversed.
    public static func writeString(utf8 bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.append(0x22)
        var runStart = 0
        let n = bytes.count
        var k = 0
        while k < n {
            let c = bytes[k]
            if c >= 0x20 && c < 0x7F && c != 0x22 && c != 0x5C {
                k += 1
                continue
            }
            if c >= 0x80 {
                let length = terminalActiveSequenceLength(bytes, at: k)
                if length == 0 {
                    k += 1
                    continue
                }
                if runStart < k { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<k])) }
                let scalar = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[k..<(k + length)]), as: UTF8.self)
                    .unicodeScalars.first!.value
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), hex[Int(scalar >> 12 & 0xF)], hex[Int(scalar >> 8 & 0xF)],
                                        hex[Int(scalar >> 4 & 0xF)], hex[Int(scalar & 0xF)]])
                k += length
                runStart = k
                continue
            }
            if runStart < k { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<k])) }
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0x08: out.append(0x5C); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(0x5C); out.append(UInt8(ascii: "f"))
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            }
            k += 1
            runStart = k
        }
        if runStart < n { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<n])) }
        out.append(0x22)
    }

    /// The UTF-8 length of the scalar at `k` if it is a C1 control (U+0080–U+009F), U+061C,
    /// U+200E/U+200F, U+202A–U+202E or U+2066–U+2069; otherwise 0.
    private static func terminalActiveSequenceLength(_ bytes: UnsafeRawBufferPointer, at k: Int) -> Int {
        let n = bytes.count
        switch bytes[k] {
        case 0xC2 where k + 1 < n && (0x80...0x9F).contains(bytes[k + 1]):
            return 2
        case 0xD8 where k + 1 < n && bytes[k + 1] == 0x9C:
            return 2
        case 0xE2 where k + 2 < n && bytes[k + 1] == 0x80 && (bytes[k + 2] == 0x8E || bytes[k + 2] == 0x8F || (0xAA...0xAE).contains(bytes[k + 2])):
            return 3
        case 0xE2 where k + 2 < n && bytes[k + 1] == 0x81 && (0xA6...0xA9).contains(bytes[k + 2]):
            return 3
        default:
            return 0
        }
    }

    /// Appends a double in its shortest round-trip form; `null` if not finite.
    public static func writeDouble(_ d: Double, into out: inout [UInt8]) {
        guard d.isFinite else {
            out.append(contentsOf: "null".utf8)
            return
        }
        out.append(contentsOf: d.description.utf8)
    }

    public static func writeInt(_ v: Int64, into out: inout [UInt8]) {
        if v == 0 {
            out.append(0x30)
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        // Work with the magnitude as UInt64 so that Int64.min is fine.
        var m = v.magnitude
        withUnsafeMutableBytes(of: &digits) { buf in
            while m > 0 {
                buf[n] = UInt8(0x30 + m % 10)
                m /= 10
                n += 1
            }
            if v < 0 { out.append(0x2D) }
            while n > 0 {
                n -= 1
                out.append(buf[n])
            }
        }
    }

    // MARK: Internals

    /// `indent < 0` means compact.
    private static func writeValue(_ value: JSONValue, into out: inout [UInt8], indent: Int, sortKeys: Bool = true) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let v): writeInt(v, into: &out)
        case .double(let d): writeDouble(d, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent: indent, plus: 1)
                writeValue(item, into: &out, indent: indent < 0 ? -1 : indent + 1, sortKeys: sortKeys)
            }
            newline(&out, indent: indent, plus: 0)
            out.append(UInt8(ascii: "]"))
        case .object(let dict):
            if dict.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            if !sortKeys {
                var first = true
                for (key, member) in dict {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    writeString(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    writeValue(member, into: &out, indent: -1, sortKeys: false)
                }
                out.append(UInt8(ascii: "}"))
                return
            }
            // Byte order, not String comparison (which normalizes): deterministic and cheap.
            let keys = dict.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent: indent, plus: 1)
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent >= 0 { out.append(0x20) }
                writeValue(dict[key]!, into: &out, indent: indent < 0 ? -1 : indent + 1)
            }
            newline(&out, indent: indent, plus: 0)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeOrdered(_ value: OrderedJSON, into out: inout [UInt8], indent: Int) {
        switch value {
        case .value(let v): writeValue(v, into: &out, indent: indent)
        case .raw(let bytes): out.append(contentsOf: bytes)
        case .array(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent: indent, plus: 1)
                writeOrdered(item, into: &out, indent: indent < 0 ? -1 : indent + 1)
            }
            newline(&out, indent: indent, plus: 0)
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            if fields.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(UInt8(ascii: "{"))
            for (k, field) in fields.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent: indent, plus: 1)
                writeString(field.0, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent >= 0 { out.append(0x20) }
                writeOrdered(field.1, into: &out, indent: indent < 0 ? -1 : indent + 1)
            }
            newline(&out, indent: indent, plus: 0)
            out.append(UInt8(ascii: "}"))
        }
    }

    @inline(__always)
    private static func newline(_ out: inout [UInt8], indent: Int, plus: Int) {
        guard indent >= 0 else { return }
        out.append(0x0A)
        for _ in 0..<((indent + plus) * 2) { out.append(0x20) }
    }
}

/// A JSON document whose objects keep the key order they were built with.
///
/// ```swift
/// let line: OrderedJSON = .object([("line", 3), ("raw", "{...}"), ("error", "bad_phone")])
/// ```
/// `.raw` embeds bytes that are already JSON text (for example a `data` object stored as jsonb);
/// they are written unchanged, so they must be valid compact JSON.
public indirect enum OrderedJSON: Sendable, Equatable {
    case value(JSONValue)
    case object([(String, OrderedJSON)])
    case array([OrderedJSON])
    case raw([UInt8])

    public static func == (a: OrderedJSON, b: OrderedJSON) -> Bool {
        switch (a, b) {
        case (.value(let x), .value(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.raw(let x), .raw(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

extension OrderedJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral, ExpressibleByArrayLiteral
{
    public init(stringLiteral value: String) { self = .value(.string(value)) }
    public init(integerLiteral value: Int64) { self = .value(.int(value)) }
    public init(booleanLiteral value: Bool) { self = .value(.bool(value)) }
    public init(nilLiteral: ()) { self = .value(.null) }
    public init(arrayLiteral elements: OrderedJSON...) { self = .array(elements) }
}
