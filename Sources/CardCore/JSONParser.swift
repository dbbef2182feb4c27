/// A hand-written RFC 8259 parser over UTF-8 bytes, producing `JSONValue`.
///
/// Choices (the RFC leaves them to implementations):
/// - The input must be valid UTF-8 as a whole; otherwise the error is `.invalidUTF8` with the
///   offset of the first bad byte, reported before any syntax error so that callers can say
///   "not valid UTF-8" rather than "not JSON".
/// - Numbers written without fraction or exponent that fit in `Int64` become `.int`; every
///   other number becomes `.double`. A number too large for a `Double` (`1e400`) is rejected.
/// - `\u` escapes must form valid UTF-16: a high surrogate must be followed by a `\u` low
///   surrogate; a lone surrogate is an error.
/// - Containers nest at most `maximumDepth` (64) levels deep.
/// - Duplicate keys in one object are rejected (`.duplicateKey`): an outbox line saying
///   `"seq": 1, ..., "seq": 2` is ambiguous and must not be guessed at. `Options.duplicateKeys`
///   can choose "last wins" instead.
/// - Whitespace (space, tab, CR, LF) may surround the value; anything else after it is an error.
public enum JSONParser {
    public static let maximumDepth = 64

    public struct Options: Sendable {
        public enum DuplicateKeys: Sendable { case reject, lastWins }
        public var duplicateKeys: DuplicateKeys
        public var maximumDepth: Int

        public init(duplicateKeys: DuplicateKeys = .reject, maximumDepth: Int = JSONParser.maximumDepth) {
            self.duplicateKeys = duplicateKeys
            self.maximumDepth = maximumDepth
        }

        public static let `default` = Options()
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, options: Options = .default) throws(JSONParseError)
        -> JSONValue
    {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(offset: 0, reason: .unexpectedEnd)
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        if let bad = firstInvalidUTF8(p, bytes.count) {
            throw JSONParseError(offset: bad, reason: .invalidUTF8)
        }
        var parser = Parser(p: p, count: bytes.count, options: options)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], options: Options = .default) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) in try parse(raw, options: options) } }
            .get()
    }

    public static func parse(_ bytes: ArraySlice<UInt8>, options: Options = .default) throws(JSONParseError)
        -> JSONValue
    {
        try bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) in try parse(raw, options: options) } }
            .get()
    }

    public static func parse(_ text: String, options: Options = .default) throws(JSONParseError) -> JSONValue {
        var copy = text
        return try copy.withUTF8 { buf in
            Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(buf), options: options) }
        }.get()
    }

    /// Whether `bytes` are valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
    public static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return firstInvalidUTF8(base.assumingMemoryBound(to: UInt8.self), bytes.count) == nil
    }

    public static func isValidUTF8<C: Collection<UInt8>>(_ bytes: C) -> Bool {
        if let r = bytes.withContiguousStorageIfAvailable({ isValidUTF8(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(bytes).withUnsafeBytes { isValidUTF8($0) }
    }

    /// The offset of the first byte that makes `p[0..<n]` invalid UTF-8, or nil.
    static func firstInvalidUTF8(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        var i = 0
        while i < n {
            // ASCII fast path, eight bytes at a time.
            while i + 8 <= n {
                let word = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            guard i < n else { return nil }
            let b0 = p[i]
            if b0 < 0x80 { i += 1; continue }
            @inline(__always) func cont(_ j: Int) -> Bool { j < n && p[j] & 0xC0 == 0x80 }
            if b0 >= 0xC2 && b0 <= 0xDF {
                guard cont(i + 1) else { return i }
                i += 2
            } else if b0 >= 0xE0 && b0 <= 0xEF {
                guard i + 1 < n else { return i }
                let b1 = p[i + 1]
                let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
                let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
                guard b1 >= lo, b1 <= hi, cont(i + 2) else { return i }
                i += 3
            } else if b0 >= 0xF0 && b0 <= 0xF4 {
                guard i + 1 < n else { return i }
                let b1 = p[i + 1]
                let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
                let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
                guard b1 >= lo, b1 <= hi, cont(i + 2), cont(i + 3) else { return i }
                i += 4
            } else {
                return i
            }
        }
        return nil
    }
}

/// Why a text is not JSON, and where (a byte offset from the start of the input).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The input is not valid UTF-8 (the offset is the first bad byte).
        case invalidUTF8
        /// The input ends inside a value (or is empty).
        case unexpectedEnd
        /// A byte that cannot start or continue a value here (the byte is given).
        case unexpectedByte(UInt8)
        /// Something other than whitespace after the value.
        case trailingCharacters
        /// A control character (below U+0020) inside a string.
        case controlCharacterInString
        /// A backslash followed by something that is not a JSON escape.
        case invalidEscape
        /// A `\u` escape that is not four hex digits or forms a lone surrogate.
        case invalidUnicodeEscape
        /// A number that does not follow the JSON grammar.
        case invalidNumber
        /// A number too large to be represented as a Double.
        case numberOutOfRange
        /// Containers nested deeper than the limit.
        case tooDeep(limit: Int)
        /// The same key twice in one object.
        case duplicateKey(String)
    }

    public var offset: Int
    public var reason: Reason

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var isInvalidUTF8: Bool { reason == .invalidUTF8 }

    /// A short explanation, e.g. "not valid UTF-8 at byte 12".
    public var description: String {
        let what: String
        switch reason {
        case .invalidUTF8: what = "not valid UTF-8"
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte(let b):
            if b >= 0x20 && b < 0x7F {
                what = "unexpected character '\(Character(Unicode.Scalar(b)))'"
            } else {
                what = "unexpected byte 0x" + String(b, radix: 16, uppercase: true)
            }
        case .trailingCharacters: what = "unexpected text after the JSON value"
        case .controlCharacterInString: what = "unescaped control character in a string"
        case .invalidEscape: what = "invalid escape sequence in a string"
        case .invalidUnicodeEscape: what = "invalid \\u escape (not 4 hex digits, or a lone surrogate)"
        case .invalidNumber: what = "invalid number"
        case .numberOutOfRange: what = "number out of range"
        case .tooDeep(let limit): what = "nested deeper than \(limit) levels"
        case .duplicateKey(let key):
            let shown = key.count > 40 ? String(key.prefix(40)) + "…" : key
            what = "duplicate key \"\(shown)\""
        }
        return "\(what) at byte \(offset)"
    }
}

private struct Parser {
    let p: UnsafePointer<UInt8>
    let count: Int
    let options: JSONParser.Options
    var i = 0
    var depth = 0
    /// Scratch buffer for strings with escapes.
    var scratch: [UInt8] = []
    /// The members of the objects being parsed, innermost last: each object's dictionary is
    /// built once its members are known, at the size they need. A dictionary grown as members
    /// arrive, or reserved for a typical object, took twice the memory (a million events' data
    /// are held in memory a batch at a time).
    var members: [(key: String, value: JSONValue)] = []

    init(p: UnsafePointer<UInt8>, count: Int, options: JSONParser.Options) {
        self.p = p
        self.count = count
        self.options = options
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard i == count else { throw JSONParseError(offset: i, reason: .trailingCharacters) }
        return value
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < count {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    @inline(__always)
    func fail(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? i, reason: reason)
    }

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard i < count else { throw fail(.unexpectedEnd) }
        switch p[i] {
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "{"):
            return try parseObject()
        case UInt8(ascii: "["):
            return try parseArray()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw fail(.unexpectedByte(p[i]))
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(JSONParseError) {
        let w = word.utf8Start
        for k in 0..<word.utf8CodeUnitCount {
            guard i < count else { throw fail(.unexpectedEnd) }
            guard p[i] == w[k] else { throw fail(.unexpectedByte(p[i])) }
            i += 1
        }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > options.maximumDepth { throw fail(.tooDeep(limit: options.maximumDepth)) }
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        i += 1 // {
        skipWhitespace()
        guard i < count else { throw fail(.unexpectedEnd) }
        if p[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object([:])
        }
        let first = members.count
        // Duplicates are looked for member by member in a short object; a long one (a hostile
        // line can hold thousands of keys) keeps a set of its keys instead.
        var keys: Set<String>?
        while true {
            guard i < count else { throw fail(.unexpectedEnd) }
            guard p[i] == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(p[i])) }
            let keyOffset = i
            let key = try parseString()
            skipWhitespace()
            guard i < count else { throw fail(.unexpectedEnd) }
            guard p[i] == UInt8(ascii: ":") else { throw fail(.unexpectedByte(p[i])) }
            i += 1
            skipWhitespace()
            let value = try parseValue()
            if options.duplicateKeys == .reject {
                let repeated: Bool
                if keys == nil && members.count - first < 32 {
                    repeated = members[first...].contains { $0.key == key }
                } else {
                    if keys == nil { keys = Set(members[first...].lazy.map(\.key)) }
                    repeated = !keys!.insert(key).inserted
                }
                if repeated { throw fail(.duplicateKey(key), at: keyOffset) }
            }
            members.append((key, value))
            skipWhitespace()
            guard i < count else { throw fail(.unexpectedEnd) }
            let c = p[i]
            i += 1
            if c == UInt8(ascii: ",") {
                skipWhitespace()
                continue
            }
            if c == UInt8(ascii: "}") { break }
            throw fail(.unexpectedByte(c), at: i - 1)
        }
        depth -= 1
        var dict = [String: JSONValue](minimumCapacity: members.count - first)
        for index in first..<members.count { dict[members[index].key] = members[index].value }
        members.removeSubrange(first...)
        return .object(dict)
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        i += 1 // [
        var items: [JSONValue] = []
        skipWhitespace()
        guard i < count else { throw fail(.unexpectedEnd) }
        if p[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            guard i < count else { throw fail(.unexpectedEnd) }
            let c = p[i]
            i += 1
            if c == UInt8(ascii: ",") {
                skipWhitespace()
                continue
            }
            if c == UInt8(ascii: "]") { break }
            throw fail(.unexpectedByte(c), at: i - 1)
        }
        depth -= 1
        return .array(items)
    }

    /// Parses a string starting at the opening quote. The input is known to be valid UTF-8.
    mutating func parseString() throws(JSONParseError) -> String {
        i += 1 // opening quote
        let start = i
        // Fast path: no escapes.
        while i < count {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail(.controlCharacterInString) }
            i += 1
        }
        guard i < count else { throw fail(.unexpectedEnd) }
        // Slow path: copy what we have, then decode escapes.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: p + start, count: i - start))
        while i < count {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if c < 0x20 { throw fail(.controlCharacterInString) }
            if c != UInt8(ascii: "\\") {
                scratch.append(c)
                i += 1
                continue
            }
            let escapeStart = i
            i += 1
            guard i < count else { throw fail(.unexpectedEnd) }
            let e = p[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): scratch.append(0x22)
            case UInt8(ascii: "\\"): scratch.append(0x5C)
            case UInt8(ascii: "/"): scratch.append(0x2F)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: escapeStart)
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    // A high surrogate must be followed by \u and a low surrogate.
                    guard i + 1 < count, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
                        throw fail(.invalidUnicodeEscape, at: escapeStart)
                    }
                    i += 2
                    let low = try hex4(at: escapeStart)
                    guard low >= 0xDC00 && low <= 0xDFFF else { throw fail(.invalidUnicodeEscape, at: escapeStart) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw fail(.invalidUnicodeEscape, at: escapeStart)
                }
                appendUTF8(scalar)
            default:
                throw fail(.invalidEscape, at: escapeStart)
            }
        }
        throw fail(.unexpectedEnd)
    }

    mutating func hex4(at escapeStart: Int) throws(JSONParseError) -> UInt32 {
        guard i + 4 <= count else { throw fail(.unexpectedEnd) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 0x61 + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 0x41 + 10)
            default: throw fail(.invalidUnicodeEscape, at: escapeStart)
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func appendUTF8(_ v: UInt32) {
        if v < 0x80 {
            scratch.append(UInt8(v))
        } else if v < 0x800 {
            scratch.append(UInt8(0xC0 | (v >> 6)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            scratch.append(UInt8(0xE0 | (v >> 12)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            scratch.append(UInt8(0xF0 | (v >> 18)))
            scratch.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < count else { throw fail(.unexpectedEnd) }
        @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        guard isDigit(p[i]) else { throw fail(.invalidNumber, at: start) }
        // Accumulate the integer part as a negative number so that Int64.min fits.
        var acc: Int64 = 0
        var overflow = false
        if p[i] == UInt8(ascii: "0") {
            i += 1
            if i < count, isDigit(p[i]) { throw fail(.invalidNumber, at: start) } // leading zero
        } else {
            while i < count, isDigit(p[i]) {
                if !overflow {
                    let (m, o1) = acc.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.subtractingReportingOverflow(Int64(p[i] - 0x30))
                    if o1 || o2 { overflow = true } else { acc = s }
                }
                i += 1
            }
        }
        var integral = true
        if i < count, p[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard i < count, isDigit(p[i]) else { throw fail(.invalidNumber, at: start) }
            while i < count, isDigit(p[i]) { i += 1 }
        }
        if i < count, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < count, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < count, isDigit(p[i]) else { throw fail(.invalidNumber, at: start) }
            while i < count, isDigit(p[i]) { i += 1 }
        }
        if integral && !overflow {
            if negative { return .int(acc) }
            if acc != Int64.min { return .int(-acc) }
        }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
        guard let d = Double(text) else { throw fail(.invalidNumber, at: start) }
        guard d.isFinite else { throw fail(.numberOutOfRange, at: start) }
        return .double(d)
    }
}
