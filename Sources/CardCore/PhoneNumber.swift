/// Mainland telephone numbers as the queue format accepts them (`bad_phone` in
/// ../shared/spec/queue-format.md): a mobile number `^1[3-9][0-9]{9}$` or a landline
/// `^0[0-9]{2,3}-?[0-9]{7,8}$`. Matched by hand over UTF-8 bytes, no regular expressions: the
/// validator checks one per submitted line.
public enum PhoneNumber {
    /// Whether `s` is a mainland mobile or landline number, exactly as the patterns above.
    public static func isValid(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { isValid(bytes: $0) }
    }

    /// `^1[3-9][0-9]{9}$`
    public static func isMobile(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { isMobile(bytes: $0) }
    }

    /// `^0[0-9]{2,3}-?[0-9]{7,8}$`
    public static func isLandline(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { isLandline(bytes: $0) }
    }

    /// The number as reports and messages may show it (`138******78`): see
    /// `PersonalDataMask.phoneNumber`. Text that is not a valid number is masked the same way.
    public static func masked(_ s: String) -> String { PersonalDataMask.phoneNumber(s) }

    // MARK: Byte matchers

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    static func isValid(bytes b: UnsafeBufferPointer<UInt8>) -> Bool {
        isMobile(bytes: b) || isLandline(bytes: b)
    }

    static func isMobile(bytes b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 11, b[0] == 0x31, b[1] >= 0x33, b[1] <= 0x39 else { return false }
        for i in 2..<11 where !isDigit(b[i]) { return false }
        return true
    }

    static func isLandline(bytes b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = b.count
        guard n >= 10, n <= 13, b[0] == 0x30 else { return false }
        if let hyphen = b.firstIndex(of: 0x2D) {
            // 0 + 2-3 digits, '-', 7-8 digits
            let area = hyphen - 1, local = n - hyphen - 1
            guard (2...3).contains(area), (7...8).contains(local) else { return false }
            for i in 1..<n where i != hyphen && !isDigit(b[i]) { return false }
            return true
        }
        // Without a hyphen: 0 + 2-3 + 7-8 digits = 10 to 12 digits in all.
        guard n <= 12 else { return false }
        for i in 1..<n where !isDigit(b[i]) { return false }
        return true
    }
}
