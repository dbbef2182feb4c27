import CardCore

/// Masks personal data in what a conflict reviewer sees: identity numbers keep their last four
/// characters (`**************001X`), phone numbers their first three and last two
/// (`138******78`, `PhoneNumber.masked`).
///
/// Masking works on values, not only on known keys, because conflict details embed whole
/// events (an `event_id_reuse` keeps the refused event's data): any string shaped like an
/// identity number or a phone number is masked wherever it appears.
public enum PersonalDataMask {
    /// `**************` + the last four characters; shorter text is masked entirely.
    public static func identityNumber(_ text: String) -> String {
        if let number = IdentityNumber(text) { return number.masked }
        let chars = Array(text)
        guard chars.count > 4 else { return String(repeating: "*", count: chars.count) }
        return String(repeating: "*", count: chars.count - 4) + String(chars.suffix(4))
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
        if let key, isPhoneKey(key) { return PhoneNumber.masked(text) }
        if looksLikeIdentityNumber(text) { return identityNumber(text) }
        if PhoneNumber.isValid(text) { return PhoneNumber.masked(text) }
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
