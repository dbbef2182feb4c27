/// A mainland resident identity number (GB 11643-1999): 18 characters, 6 digits of
/// administrative region, 8 digits of birth date (`YYYYMMDD`), 3 digits of sequence (the last of
/// them odd for men, even for women) and a check character `0`-`9` or `X` computed with
/// ISO 7064 MOD 11-2.
///
/// Only an upper-case `X` is accepted as check character: the queue format says `0-9 or X`.
/// Whether the birth date lies in the future is not checked here (that depends on the
/// event's time and belongs to the queue validator).
///
/// `description` is the masked form, so that interpolating an identity number into a log or
/// an error message never leaks the full number; use `text` for the full number.
public struct IdentityNumber: Sendable, Hashable, CustomStringConvertible {
    /// The full 18-character number.
    public let text: String
    /// The birth date encoded in characters 7-14.
    public let birthDate: CivilDate
    /// The sex encoded in the 17th character.
    public let sex: Sex

    /// The ISO 7064 MOD 11-2 weights of the first 17 digits.
    public static let weights: [Int] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

    /// Validates `text`; `nil` when it is not a valid identity number (see `validate(_:)` for why).
    public init?(_ text: String) {
        guard case .success(let number) = IdentityNumber.validate(text) else { return nil }
        self = number
    }

    private init(text: String, birthDate: CivilDate, sex: Sex) {
        self.text = text
        self.birthDate = birthDate
        self.sex = sex
    }

    /// Validates `text` and says precisely why it is not an identity number. Checks, in order:
    /// length (18 characters), digits (17 ASCII digits then `0-9` or `X`), check character, birth date.
    public static func validate(_ text: String) -> Result<IdentityNumber, IdentityNumberError> {
        let bytes = Array(text.utf8)
        guard bytes.count == 18 else {
            // Count characters, not bytes, so that the message matches what a person sees.
            // Eighteen characters that are not all ASCII (full-width digits typed by an input
            // method, say) have the right length: what is wrong is the characters.
            let characters = text.count
            return .failure(characters == 18 ? .notDigits : .wrongLength(characters))
        }
        var digits = [Int](repeating: 0, count: 17)
        for i in 0..<17 {
            let b = bytes[i]
            guard b >= 0x30, b <= 0x39 else { return .failure(.notDigits) }
            digits[i] = Int(b - 0x30)
        }
        let last = bytes[17]
        guard (last >= 0x30 && last <= 0x39) || last == 0x58 else { return .failure(.notDigits) }
        let expected = checkCharacter(digits: digits)
        guard UInt8(ascii: expected) == last else { return .failure(.badCheckCharacter(expected: Character(expected))) }
        let year = digits[6] * 1000 + digits[7] * 100 + digits[8] * 10 + digits[9]
        let month = digits[10] * 10 + digits[11]
        let day = digits[12] * 10 + digits[13]
        guard let birth = CivilDate(year: year, month: month, day: day) else {
            return .failure(.impossibleBirthDate)
        }
        return .success(IdentityNumber(text: text, birthDate: birth, sex: digits[16] % 2 == 1 ? .male : .female))
    }

    /// The check character for the first 17 characters of a number; `nil` unless they are
    /// exactly 17 ASCII digits.
    public static func checkCharacter(for first17: String) -> Character? {
        let bytes = Array(first17.utf8)
        guard bytes.count == 17, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Character(Unicode.Scalar(checkCharacter(digits: bytes.map { Int($0 - 0x30) })))
    }

    /// ISO 7064 MOD 11-2 over 17 digit values: `(12 - (Σ digit × weight) mod 11) mod 11`, 10 written `X`.
    static func checkCharacter(digits: [Int]) -> Unicode.Scalar {
        var sum = 0
        for i in 0..<17 { sum += digits[i] * weights[i] }
        let value = (12 - sum % 11) % 11
        return value == 10 ? "X" : Unicode.Scalar(UInt8(0x30 + value))
    }

    /// Builds a valid number from its parts: `regionCode` (6 digits), `birthDate` (year
    /// 1000-9999) and `sequence` (0...999, odd for a man, even for a woman).
    /// The parts are the caller's to get right: wrong ones are a programming error.
    public static func make(regionCode: String, birthDate: CivilDate, sequence: Int) -> IdentityNumber {
        precondition(regionCode.utf8.count == 6 && regionCode.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 },
                     "region code must be 6 digits")
        precondition((0...999).contains(sequence), "sequence must be 0...999")
        precondition((1000...9999).contains(birthDate.year), "birth year must have 4 digits")
        var bytes = Array(regionCode.utf8)
        func append(_ value: Int, width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                bytes.append(UInt8(0x30 + v / divisor))
                v %= divisor
                divisor /= 10
            }
        }
        append(birthDate.year, width: 4)
        append(birthDate.month, width: 2)
        append(birthDate.day, width: 2)
        append(sequence, width: 3)
        bytes.append(UInt8(ascii: checkCharacter(digits: bytes.map { Int($0 - 0x30) })))
        return IdentityNumber(text: String(decoding: bytes, as: UTF8.self), birthDate: birthDate,
                              sex: sequence % 2 == 1 ? .male : .female)
    }

    /// The six-digit administrative region code (characters 1-6).
    public var regionCode: String { String(text.prefix(6)) }

    /// Every character but the last four replaced by `*`: `**************002X`
    /// (`PersonalDataMask.identityNumber`).
    public var masked: String { PersonalDataMask.identityNumber(text) }

    public var description: String { masked }
}

/// Why a text is not a resident identity number; `description` is a sentence for a quarantine detail.
public enum IdentityNumberError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not 18 characters (the associated value is the number of characters found).
    case wrongLength(Int)
    /// The first 17 characters are not all ASCII digits, or the last is neither one nor `X`.
    case notDigits
    /// The check character does not match ISO 7064 MOD 11-2; `expected` is the right one.
    case badCheckCharacter(expected: Character)
    /// Characters 7-14 are not a real calendar date.
    case impossibleBirthDate

    public var description: String {
        switch self {
        case .wrongLength(let n):
            return "an identity number has 18 characters, this one has \(n)"
        case .notDigits:
            return "an identity number is 17 ASCII digits (0-9) followed by a digit or an upper-case X"
        case .badCheckCharacter(let expected):
            return "the check character is wrong (ISO 7064 MOD 11-2 gives \(expected))"
        case .impossibleBirthDate:
            return "characters 7-14 are not a real birth date (YYYYMMDD)"
        }
    }
}
