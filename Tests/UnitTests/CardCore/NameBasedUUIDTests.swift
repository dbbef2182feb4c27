import CardCore
import Foundation
import Testing

@Suite("Name-based UUIDs")
struct NameBasedUUIDTests {
    @Test("the RFC's version-3 example: www.example.com in the DNS namespace")
    func rfcExample() {
        let dns = UUID(uuidString: "6ba7b810-9dad-11d1-80b4-00c04fd430c8")!
        #expect(UUID(v3: "www.example.com", in: dns) == UUID(uuidString: "5df41881-3aed-3515-88a7-2f4a814cf09e"))
    }

    @Test("the same name gives the same id, another name or namespace another id, always version 3")
    func stableAndDistinct() {
        let a = UUID(v3: "conflict_opened/duplicate_application/x")
        #expect(a == UUID(v3: "conflict_opened/duplicate_application/x"))
        #expect(a != UUID(v3: "conflict_opened/duplicate_application/y"))
        #expect(a != UUID(v3: "conflict_opened/duplicate_application/x", in: UUID(uuidString: "6ba7b810-9dad-11d1-80b4-00c04fd430c8")!))
        // A name longer than one MD5 block.
        let long = String(repeating: "名", count: 200)
        #expect(UUID(v3: long) == UUID(v3: long))
        for id in [a, UUID(v3: long)] {
            #expect(id.uuid.6 >> 4 == 3)
            #expect(id.uuid.8 >> 6 == 0b10)
        }
    }
}
