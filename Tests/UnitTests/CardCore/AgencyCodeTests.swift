import CardCore
import Foundation
import Testing

@Suite("Agency codes")
struct AgencyCodeTests {
    @Test("the rule ^[A-Z0-9][A-Z0-9-]{1,31}$, and nothing else")
    func rule() {
        for good in ["CS-FR-001", "CS-ONLINE", "A1", "9-", String(repeating: "A", count: 32)] {
            #expect(AgencyCode(good)?.rawValue == good, "\(good)")
        }
        for bad in ["", "A", "-A", "cs-fr-001", "CS FR", "CS_FR", "ＣＳ", "CS-FR-001\n", String(repeating: "A", count: 33), "É1"] {
            #expect(AgencyCode(bad) == nil, "\(bad)")
            #expect(!AgencyCode.isValid(bad))
        }
        #expect(AgencyCode.problem("cs-1").contains(AgencyCode.rule))
    }

    @Test("JSON: a string, refused when it breaks the rule")
    func codable() throws {
        let code = try #require(AgencyCode("CS-FR-001"))
        let data = try JSONEncoder().encode([code])
        #expect(String(decoding: data, as: UTF8.self) == #"["CS-FR-001"]"#)
        #expect(try JSONDecoder().decode([AgencyCode].self, from: data) == [code])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([AgencyCode].self, from: Data(#"["cs"]"#.utf8)) }
    }
}
