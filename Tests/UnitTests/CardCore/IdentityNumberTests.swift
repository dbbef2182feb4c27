import CardCore
import Testing

/// GB 11643-1999 identity numbers, checked against published examples and hand computations.
///
/// Weights of the first 17 digits: 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2;
/// check = (12 - (Σ digit × weight) mod 11) mod 11, written `X` for 10.
@Suite("Resident identity number")
struct IdentityNumberTests {
    /// The standard's own example. Products: 7 9 0 5 0 20 2 9 24 27 7 18 30 5 0 0 4 = 167;
    /// 167 mod 11 = 2; (12 - 2) mod 11 = 10 -> X.
    @Test("the standard's example 11010519491231002X is valid, female, born 1949-12-31")
    func standardExample() throws {
        let id = try #require(IdentityNumber("11010519491231002X"))
        #expect(id.birthDate == CivilDate(year: 1949, month: 12, day: 31))
        #expect(id.sex == .female)
        #expect(id.regionCode == "110105")
        #expect(IdentityNumber.checkCharacter(for: "11010519491231002") == "X")
    }

    /// Products: 28 36 0 25 16 16 2 8 48 0 0 9 0 5 0 0 2 = 195; 195 mod 11 = 8; 12 - 8 = 4.
    @Test("the widely used example 440524188001010014 is valid, male, born 1880-01-01")
    func widelyUsedExample() throws {
        let id = try #require(IdentityNumber("440524188001010014"))
        #expect(id.birthDate == CivilDate(year: 1880, month: 1, day: 1))
        #expect(id.sex == .male)
    }

    /// Computed by hand:
    /// - 43010220190315001 -> 28 27 0 5 0 8 4 0 6 27 0 27 10 25 0 0 2 = 169; 169 mod 11 = 4; 12 - 4 = 8.
    /// - 43010419880101001 -> 28 27 0 5 0 16 2 9 48 24 0 9 0 5 0 0 2 = 175; 175 mod 11 = 10; 12 - 10 = 2.
    /// - 43018120200229002 -> 28 27 0 5 64 4 4 0 12 0 0 18 20 45 0 0 4 = 231; 231 mod 11 = 0; 12 mod 11 = 1.
    @Test("check characters computed by hand agree", arguments: [
        ("43010220190315001", Character("8")),
        ("43010419880101001", Character("2")),
        ("43018120200229002", Character("1")),
    ])
    func handComputed(first17: String, check: Character) throws {
        #expect(IdentityNumber.checkCharacter(for: first17) == check)
        let id = try #require(IdentityNumber(first17 + String(check)))
        #expect(id.text == first17 + String(check))
    }

    @Test("a leap day is a real birth date; sex comes from the 17th digit (even = F)")
    func leapDay() throws {
        let id = try #require(IdentityNumber("430181202002290021"))
        #expect(id.birthDate == CivilDate(year: 2020, month: 2, day: 29))
        #expect(id.sex == .female)
    }

    @Test("a wrong check character is rejected and the right one named")
    func wrongCheckCharacter() {
        #expect(IdentityNumber("440524188001010015") == nil)
        #expect(IdentityNumber.validate("440524188001010015") == .failure(.badCheckCharacter(expected: "4")))
        #expect(IdentityNumber.validate("110105194912310021") == .failure(.badCheckCharacter(expected: "X")))
    }

    @Test("only an upper-case X is a check character")
    func lowerCaseX() {
        #expect(IdentityNumber("11010519491231002x") == nil)
        #expect(IdentityNumber.validate("11010519491231002x") == .failure(.notDigits))
    }

    @Test("31 February is not a real birth date, even with a right check character")
    func impossibleDate() throws {
        let first17 = "43010220190231001"
        let check = try #require(IdentityNumber.checkCharacter(for: first17))
        #expect(IdentityNumber.validate(first17 + String(check)) == .failure(.impossibleBirthDate))
        let notLeap = "43010220210229002"
        let check2 = try #require(IdentityNumber.checkCharacter(for: notLeap))
        #expect(IdentityNumber(notLeap + String(check2)) == nil)
        let month13 = "43010220191301002"
        let check3 = try #require(IdentityNumber.checkCharacter(for: month13))
        #expect(IdentityNumber.validate(month13 + String(check3)) == .failure(.impossibleBirthDate))
    }

    @Test("17 or 19 characters are the wrong length")
    func wrongLength() {
        #expect(IdentityNumber.validate("44052418800101001") == .failure(.wrongLength(17)))
        #expect(IdentityNumber.validate("4405241880010100144") == .failure(.wrongLength(19)))
        #expect(IdentityNumber.validate("") == .failure(.wrongLength(0)))
        #expect(IdentityNumber.validate("王小明") == .failure(.wrongLength(3)))
    }

    @Test("letters among the first 17 characters are rejected")
    func letters() {
        #expect(IdentityNumber.validate("4405241880010100A4") == .failure(.notDigits))
        #expect(IdentityNumber.validate("44052418800101001Y") == .failure(.notDigits))
        #expect(IdentityNumber.checkCharacter(for: "4405241880010100A") == nil)
        #expect(IdentityNumber.checkCharacter(for: "4405241880010100") == nil)
    }

    @Test("make builds valid numbers whose sequence parity sets the sex")
    func make() throws {
        let birth = try #require(CivilDate(year: 2019, month: 3, day: 15))
        let boy = IdentityNumber.make(regionCode: "430102", birthDate: birth, sequence: 1)
        #expect(boy.text == "430102201903150018")
        #expect(boy.sex == .male)
        #expect(IdentityNumber(boy.text) == boy)
        let girl = IdentityNumber.make(regionCode: "430181", birthDate: birth, sequence: 998)
        #expect(girl.sex == .female)
        #expect(girl.text.hasPrefix("43018120190315998"))
        #expect(IdentityNumber(girl.text) == girl)
        let standard = IdentityNumber.make(regionCode: "110105",
                                           birthDate: try #require(CivilDate(year: 1949, month: 12, day: 31)),
                                           sequence: 2)
        #expect(standard.text == "11010519491231002X")
    }

    @Test("masking keeps only the last four characters, also in description")
    func masking() throws {
        let id = try #require(IdentityNumber("11010519491231002X"))
        #expect(id.masked == "**************002X")
        #expect("\(id)" == "**************002X")
    }
}
