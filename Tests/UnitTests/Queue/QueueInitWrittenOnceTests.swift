import CardCore
import EventFixtures
import Foundation
import Testing
@testable import CardSync

/// queue-format.md: agency.json is the "identity of the agency (written once by
/// `cardsync queue init`)". Running init again must not rewrite it: the same identity or
/// fields left out change nothing; a field given with another value is refused.
@Suite("Queue init: agency.json written once")
struct QueueInitWrittenOnceTests {
    func directory(_ scratch: QueueScratch) -> URL { scratch.root.appendingPathComponent("CS-FR-001") }

    func initialize(_ scratch: QueueScratch, code: String = "CS-FR-001", name: String? = nil, district: String? = nil,
                    channel: AgencyChannel? = nil) throws(QueueError) -> QueueDirectory.InitResult {
        try QueueDirectory.initialize(at: directory(scratch), code: code, name: name, district: district, channel: channel)
    }

    @Test("the first run writes the given fields and the defaults for the others")
    func firstRunWritesDefaults() throws {
        let scratch = try QueueScratch()
        let result = try initialize(scratch, district: "芙蓉区")
        #expect(result.created)
        #expect(result.agency == Agency(code: "CS-FR-001", name: "CS-FR-001", district: "芙蓉区", channel: .counter))
        #expect(try result.queue.readAgency() == result.agency)
    }

    @Test("re-running with the same identity, or with fields left out, changes nothing")
    func sameOrOmittedChangesNothing() throws {
        let scratch = try QueueScratch()
        let first = try initialize(scratch, name: "芙蓉区社保卡服务网点", district: "芙蓉区", channel: .counter)
        let bytes = try scratch.read(first.queue.agencyFile)
        let modified = try FileManager.default.attributesOfItem(atPath: first.queue.agencyFile.path)[.modificationDate] as? Date
        try scratch.append(first.queue.outboxFile, outboxLine(seq: 1) + [0x0A])
        let outbox = try scratch.read(first.queue.outboxFile)
        for (name, district, channel) in [("芙蓉区社保卡服务网点", "芙蓉区", AgencyChannel.counter)] as [(String?, String?, AgencyChannel?)]
            + [(nil, nil, nil), ("芙蓉区社保卡服务网点", nil, nil), (nil, "芙蓉区", nil), (nil, nil, .counter)]
        {
            let again = try initialize(scratch, name: name, district: district, channel: channel)
            #expect(!again.created)
            #expect(again.agency == first.agency)
            #expect(try scratch.read(first.queue.agencyFile) == bytes, "\(String(describing: name)) \(String(describing: district))")
        }
        // The file was not even replaced by an equal copy.
        #expect(try FileManager.default.attributesOfItem(atPath: first.queue.agencyFile.path)[.modificationDate] as? Date == modified)
        #expect(try scratch.read(first.queue.outboxFile) == outbox)
        // The old entry point with the complete identity is as safe.
        #expect(try QueueDirectory.initialize(at: directory(scratch), agency: first.agency) == first.queue)
        #expect(try scratch.read(first.queue.agencyFile) == bytes)
    }

    @Test("re-running with another name, district, channel or code refuses, saying which field differs and what the file holds")
    func differentFieldIsRefused() throws {
        let scratch = try QueueScratch()
        let first = try initialize(scratch, name: "芙蓉区社保卡服务网点", district: "芙蓉区")
        let bytes = try scratch.read(first.queue.agencyFile)
        let cases: [(String, String?, String?, AgencyChannel?, [String])] = [
            ("CS-FR-001", "芙蓉区网点", nil, nil, [#"name "芙蓉区网点""#, #"agency.json holds "芙蓉区社保卡服务网点""#]),
            ("CS-FR-001", nil, "天心区", nil, [#"district "天心区""#, #"agency.json holds "芙蓉区""#]),
            ("CS-FR-001", nil, nil, .online, ["channel online", "agency.json holds counter"]),
            ("CS-FR-001", "x", "y", nil, ["name \"x\"", "district \"y\""]),
            ("CS-YL-002", nil, nil, nil, ["already belongs to agency CS-FR-001"]),
        ]
        for (code, name, district, channel, mentions) in cases {
            do {
                _ = try initialize(scratch, code: code, name: name, district: district, channel: channel)
                Issue.record("accepted \(code) \(String(describing: name)) \(String(describing: district))")
            } catch {
                #expect(error.code == .agencyMismatch)
                for mention in mentions { #expect(error.message.contains(mention), "\(error.message)") }
            }
            #expect(try scratch.read(first.queue.agencyFile) == bytes)
        }
    }

    @Test("a district given for a queue created without one is refused: the file holds none")
    func districtWhereThereWasNone() throws {
        let scratch = try QueueScratch()
        let first = try initialize(scratch)
        do {
            _ = try initialize(scratch, district: "芙蓉区")
            Issue.record("added a district")
        } catch {
            #expect(error.code == .agencyMismatch)
            #expect(error.message.contains("agency.json holds none"), "\(error.message)")
        }
        #expect(try first.queue.readAgency().district == nil)
    }
}
