import CardCore
import Testing

/// The one masking rule for identity and phone numbers, whoever shows them.
struct PersonalDataMaskTests {
    @Test("identity numbers keep their last four characters, at most 14 stars")
    func identityNumbers() {
        #expect(PersonalDataMask.identityNumber("43010220190315001X") == "**************001X")
        #expect(PersonalDataMask.identityNumber("4301022019031500") == "************1500")
        #expect(PersonalDataMask.identityNumber(String(repeating: "7", count: 30)) == String(repeating: "*", count: 14) + "7777")
        #expect(PersonalDataMask.identityNumber("1234") == "****")
        let number = IdentityNumber.make(regionCode: "430102", birthDate: CivilDate(year: 2019, month: 3, day: 15)!, sequence: 1)
        #expect(number.masked == PersonalDataMask.identityNumber(number.text))
        #expect("\(number)" == number.masked)
    }

    @Test("phone numbers keep their first three and last two characters; hyphens stay")
    func phoneNumbers() {
        #expect(PersonalDataMask.phoneNumber("13812345678") == "138******78")
        #expect(PersonalDataMask.phoneNumber("0731-84561234") == "073*-******34")
        #expect(PersonalDataMask.phoneNumber("12345") == "*****")
        #expect(PhoneNumber.masked("13812345678") == PersonalDataMask.phoneNumber("13812345678"))
    }

    @Test("a value quoted in a message is masked when it holds six digits, unless exempt")
    func quotedValues() {
        #expect(PersonalDataMask.quotedForMessage("13812345678") == "\"*******5678\"")
        #expect(PersonalDataMask.quotedForMessage("father") == "\"father\"")
        #expect(PersonalDataMask.quotedForMessage("2026-10-03T09:15:27+08:00") { $0.hasPrefix("2026") } == "\"2026-10-03T09:15:27+08:00\"")
        #expect(PersonalDataMask.quotedForMessage(String(repeating: "a", count: 50)) == "\"" + String(repeating: "a", count: 40) + "…\"")
    }

    @Test("values are masked wherever they appear in a document, by key and by shape")
    func documents() {
        let masked = PersonalDataMask.json(["guardian": ["phone": "13812345678", "id_number": "430102198801010011"],
                                            "refused": ["data": ["x": "43010220190315001X", "y": "13900001111"]]])
        #expect(masked["guardian"]?["phone"] == "138******78")
        #expect(masked["guardian"]?["id_number"] == "**************0011")
        // Under any key, a value shaped like a number is masked (a refused event keeps its data).
        #expect(masked["refused"]?["data"]?["x"] == "**************001X")
        #expect(masked["refused"]?["data"]?["y"] == "139******11")
    }
}
