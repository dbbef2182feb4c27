/// The one place that decides how personal data is shown: identity numbers keep their last four
/// characters (`**************001X`), phone numbers their first three and last two
/// (`138******78`). Validation messages, conflict details, reports and logs all mask through it.
///
/// Masking works on values, not only on known keys, because conflict details embed whole
/// events (an `event_id_reuse` keeps the refused event's data): any string shaped like an
/// identity number or a phone number is masked wherever it appears.
public enum PersonalDataMask {
    /// Every character but the last four replaced by `*`, at most 14 stars (an 18-character
    /// number shows as `**************001X`; longer text does not tell its length); text of four
    /// characters or fewer is masked entirely. Valid or not: a mistyped number is still personal.
    public static func identityNumber(_ text: String) -> String {
        let n = text.count
        guard n > 4 else { return String(repeating: "*", count: n) }
        return String(repeating: "*", count: min(n - 4, 14)) + text.suffix(4)
    }

    /// Keeps the first three and the last two characters and replaces every other one by `*`
    /// (a hyphen stays): `13812345678` → `138******78`, `0731-84561234` → `073*-******34`.
    /// Text of fewer than six characters is masked entirely.
    public static func phoneNumber(_ text: String) -> String {
        let chars = Array(text)
        guard chars.count >= 6 else { return String(repeating: "*", count: chars.count) }
        var out = ""
        out.reserveCapacity(chars.count)
        for (i, c) in chars.enumerated() {
            if i < 3 || i >= chars.count - 2 || c == "-" { out.append(c) } else { out.append("*") }
        }
        return out
    }

    /// A value typed into a form, quoted for a validation message: shortened to 40 characters,
    /// and masked like an identity number when it holds six or more digits (it could be an
    /// identity or phone number typed into the wrong field). `exempt` keeps values that are
    /// known not to be personal (a UUID, a timestamp) readable.
    public static func quotedForMessage(_ text: String, exempt: (String) -> Bool = { _ in false }) -> String {
        let digits = text.utf8.reduce(0) { $0 + ($1 >= 0x30 && $1 <= 0x39 ? 1 : 0) }
        if digits >= 6 && !exempt(text) {
            return "\"\(identityNumber(String(text.prefix(40))))\""
        }
        if text.count > 40 { return "\"\(text.prefix(40))…\"" }
        return "\"\(text)\""
    }

    /// 18 characters: 17 digits and a check character `0-9`/`X` (the check itself is not needed
    /// to decide that it must not be shown).
    public static func looksLikeIdentityNumber(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 18 else { return false }
        for b in bytes.prefix(17) where !(b >= 0x30 && b <= 0x39) { return false }
        let last = bytes[17]
        return (last >= 0x30 && last <= 0x39) || last == 0x58 || last == 0x78
    }

    /// Masks one string found under `key` (nil for array elements).
    public static func string(_ text: String, key: String?) -> String {
        if let key, isIdentityKey(key) { return identityNumber(text) }
        if let key, isPhoneKey(key) { return phoneNumber(text) }
        if looksLikeIdentityNumber(text) { return identityNumber(text) }
        if PhoneNumber.isValid(text) { return phoneNumber(text) }
        return text
    }

    /// A copy of `value` with every identity number and phone number masked.
    public static func json(_ value: JSONValue, key: String? = nil) -> JSONValue {
        switch value {
        case .string(let s):
            return .string(string(s, key: key))
        case .array(let items):
            return .array(items.map { json($0, key: key) })
        case .object(let object):
            // A field-merge entry names its path once and holds the values under other keys.
            let pathKey = object["path"]?.stringValue
            var out: [String: JSONValue] = [:]
            for (k, v) in object {
                let effectiveKey = (pathKey != nil && k.hasSuffix("value")) ? pathKey! : k
                out[k] = json(v, key: effectiveKey)
            }
            return .object(out)
        default:
            return value
        }
    }

    /// The value at a form path, masked according to that path.
    public static func formValue(_ value: JSONValue, path: String) -> JSONValue {
        json(value, key: path)
    }

    static func isIdentityKey(_ key: String) -> Bool { key.hasSuffix("id_number") }
    static func isPhoneKey(_ key: String) -> Bool { key == "phone" || key.hasSuffix(".phone") }
}
