import CardCore
import Testing

@Suite("Phone numbers")
struct PhoneNumberTests {
    @Test("a mainland mobile is 1, then 3-9, then nine digits", arguments: [
        "13812345678", "19912345678", "16612345678", "15000000000",
    ])
    func mobiles(number: String) {
        #expect(PhoneNumber.isValid(number))
        #expect(PhoneNumber.isMobile(number))
    }

    @Test("a landline is 0, two or three digits, an optional hyphen, seven or eight digits", arguments: [
        "0731-84561234", "073184561234", "010-1234567", "0101234567", "0731-8456123", "021-12345678",
    ])
    func landlines(number: String) {
        #expect(PhoneNumber.isValid(number))
        #expect(PhoneNumber.isLandline(number))
    }

    @Test("anything else is not a phone number", arguments: [
        "", "1381234567", "138123456789", "12812345678", "23812345678", "138-1234-5678", "+8613812345678",
        "0731-123456", "0731-123456789", "07311234567890", "0-12345678", "07-12345678", "07311-1234567",
        "0731--8456123", "0731-8456123a", "1381234567８", "１3812345678", "073-", "abc",
    ])
    func invalid(number: String) {
        #expect(!PhoneNumber.isValid(number))
    }

    @Test("masking keeps the first three and the last two characters and any hyphen")
    func masking() {
        #expect(PhoneNumber.masked("13812345678") == "138******78")
        #expect(PhoneNumber.masked("0731-84561234") == "073*-******34")
        #expect(PhoneNumber.masked("12345") == "*****")
    }
}
